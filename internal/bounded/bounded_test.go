package bounded

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadFull(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3}, 1<<20) // 3 MiB: several doublings
	got, err := ReadFull(iotest.HalfReader(bytes.NewReader(data)), int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadFull of %d bytes: %d bytes, %v", len(data), len(got), err)
	}
	// A length far beyond the input: the input's bytes and ErrUnexpectedEOF,
	// with memory of the order of the input, not of the length.
	got, err = ReadFull(bytes.NewReader(data[:10]), 1<<40)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 10 || cap(got) > firstChunk {
		t.Errorf("short input: %d bytes (cap %d), %v; want 10 bytes and ErrUnexpectedEOF", len(got), cap(got), err)
	}
	if _, err := ReadFull(bytes.NewReader(nil), 5); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
	if got, err := ReadFull(bytes.NewReader(data), 0); err != nil || len(got) != 0 {
		t.Errorf("zero length: %d bytes, %v", len(got), err)
	}
	if _, err := ReadFull(bytes.NewReader(data), -1); err == nil {
		t.Error("negative length accepted")
	}
	boom := errors.New("boom")
	if _, err := ReadFull(iotest.ErrReader(boom), 5); !errors.Is(err, boom) {
		t.Errorf("read error: %v, want boom", err)
	}
}

// TestInflatedCap checks the bound against the best deflate can do: zeros at
// the best compression level.
func TestInflatedCap(t *testing.T) {
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestCompression)
	const n = 64 << 20
	w.Write(make([]byte, n))
	w.Close()
	if c := InflatedCap(int64(z.Len())); c < n {
		t.Errorf("%d compressed bytes inflate to %d, above InflatedCap = %d", z.Len(), n, c)
	}
	if c := InflatedCap(1 << 62); c != 1<<63-1 {
		t.Errorf("InflatedCap(2^62) = %d, want saturation", c)
	}
}

func TestLimitReader(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	got, err := io.ReadAll(LimitReader(bytes.NewReader(data), 100, "the input"))
	if err != nil || len(got) != 100 {
		t.Errorf("exactly at the limit: %d bytes, %v", len(got), err)
	}
	got, err = io.ReadAll(iotest.OneByteReader(LimitReader(bytes.NewReader(data), 99, "the input")))
	var tl *TooLongError
	if !errors.As(err, &tl) || tl.Limit != 99 || len(got) != 99 {
		t.Errorf("one byte over: %d bytes, %v; want 99 bytes and a TooLongError", len(got), err)
	}
	if err != nil && err.Error() != "the input holds more than 99 bytes (corrupt, or a decompression bomb)" {
		t.Errorf("message %q", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"conv1.weight.npy": "conv1.weight.npy",
		"x\n.npy":          `"x\n.npy"`,
		"a\x00b":           `"a\x00b"`,
		"café/ü.bin":       "café/ü.bin",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
	}
}
