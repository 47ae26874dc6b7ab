package npz

import (
	"archive/zip"
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// checkArray fails t unless a read either failed with a one-line error or
// gave an array whose data matches its shape.
func checkArray(t *testing.T, a *Array, err error) {
	t.Helper()
	if err != nil {
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error of more than one line: %q", err)
		}
		return
	}
	if n := dataLen(a.Data); n < 0 || n != a.Len() {
		t.Fatalf("shape %v (%d elements) with %d data elements", a.Shape, a.Len(), n)
	}
}

func npySeeds(f *testing.F) {
	for _, a := range []*Array{
		{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Shape: []int{}, Data: []int64{-7}},
		{Shape: []int{2, 2}, Data: []uint8{1, 2, 3, 4}},
		{Shape: []int{3}, Data: []bool{true, false, true}},
		{Shape: []int{1, 2}, Data: []float64{1.5, -2}},
	} {
		f.Add(npyBytes(f, a))
	}
	f.Add(rawNPY("{'descr': '>i4', 'fortran_order': True, 'shape': (2, 2), }", true, make([]byte, 16)))
}

// FuzzReadNPY feeds arbitrary bytes to the .npy reader, with the size
// unknown (ReadNPY) and known (as ReadNPYFile reads).
func FuzzReadNPY(f *testing.F) {
	npySeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ReadNPY(bytes.NewReader(b))
		checkArray(t, a, err)
		br := bufio.NewReader(bytes.NewReader(b))
		a, err = readNPY(br, int64(len(b)), true)
		if err == nil {
			err = atEnd(br)
		}
		checkArray(t, a, err)
	})
}

// FuzzReadNPZ feeds arbitrary bytes to the .npz reader.
func FuzzReadNPZ(f *testing.F) {
	member := npyBytes(f, &Array{Shape: []int{2}, Data: []float64{1, 2}})
	for _, m := range []uint16{zip.Store, zip.Deflate} {
		f.Add(zipOf(f, "a.npy", member, m))
	}
	var b bytes.Buffer
	Write(&b, []Named{{"x", &Array{Shape: []int{1}, Data: []int32{3}}}, {"y", &Array{Shape: []int{2}, Data: []uint8{1, 2}}}})
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		ar, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		for _, n := range ar.Names {
			checkArray(t, ar.Arrays[n], nil)
		}
	})
}
