package cpu

import (
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Buffer is a tensor in Go memory: a typed flat slice (shared with the
// tensors package, see HasSharedBuffers) and the address of its first value.
type Buffer struct {
	shape shapes.Shape
	flat  any            // []T for the shape's dtype
	ptr   unsafe.Pointer // &flat[0], nil for an empty buffer
	valid bool
}

// bufferKey identifies interchangeable buffers.
type bufferKey struct {
	dtype dtypes.DType
	size  int
}

// bufferPool recycles finalised buffers by dtype and size, so that the
// outputs of a steady-state loop (whose previous outputs are finalised)
// allocate nothing.
type bufferPool struct {
	pools sync.Map // bufferKey → *sync.Pool
}

func (p *bufferPool) get(shape shapes.Shape) *Buffer {
	key := bufferKey{shape.DType, shape.Size()}
	if v, ok := p.pools.Load(key); ok {
		if b, _ := v.(*sync.Pool).Get().(*Buffer); b != nil {
			b.shape = shape
			b.valid = true
			return b
		}
	}
	return newBuffer(shape)
}

func (p *bufferPool) put(b *Buffer) {
	if b == nil || b.flat == nil {
		return
	}
	b.valid = false
	key := bufferKey{b.shape.DType, b.shape.Size()}
	v, _ := p.pools.LoadOrStore(key, &sync.Pool{})
	v.(*sync.Pool).Put(b)
}

func (p *bufferPool) clear() { p.pools.Clear() }

// newBuffer allocates a zeroed buffer of shape.
func newBuffer(shape shapes.Shape) *Buffer {
	n := shape.Size()
	v := reflect.MakeSlice(reflect.SliceOf(shape.DType.GoType()), n, n)
	b := &Buffer{shape: shape, flat: v.Interface(), valid: true}
	if n > 0 {
		b.ptr = v.UnsafePointer()
	}
	return b
}

// bytes returns the buffer's memory.
func (b *Buffer) bytes() []byte {
	if b.ptr == nil {
		return nil
	}
	return unsafe.Slice((*byte)(b.ptr), b.shape.Size()*b.shape.DType.Size())
}

func (b *Backend) checkBuffer(buf backends.Buffer) (*Buffer, error) {
	cb, ok := buf.(*Buffer)
	if !ok || cb == nil {
		return nil, fmt.Errorf("cpu backend: buffer %T is not from this backend", buf)
	}
	if !cb.valid {
		return nil, fmt.Errorf("cpu backend: buffer %s was already finalised or donated", cb.shape)
	}
	return cb, nil
}

// BufferFinalize returns the buffer's memory to the pool; the buffer must not
// be used afterwards.
func (b *Backend) BufferFinalize(buf backends.Buffer) error {
	cb, err := b.checkBuffer(buf)
	if err != nil {
		return err
	}
	if b.IsFinalized() {
		cb.valid = false
		return nil
	}
	b.buffers.put(cb)
	return nil
}

// BufferShape returns the buffer's shape.
func (b *Backend) BufferShape(buf backends.Buffer) (shapes.Shape, error) {
	cb, ok := buf.(*Buffer)
	if !ok || cb == nil {
		return shapes.Invalid(), fmt.Errorf("cpu backend: buffer %T is not from this backend", buf)
	}
	return cb.shape, nil
}

// BufferDeviceNum returns 0, the only device.
func (b *Backend) BufferDeviceNum(buf backends.Buffer) (backends.DeviceNum, error) {
	if _, ok := buf.(*Buffer); !ok {
		return 0, fmt.Errorf("cpu backend: buffer %T is not from this backend", buf)
	}
	return 0, nil
}

// BufferToFlatData copies the buffer's values into flat, a slice of the same
// dtype and size.
func (b *Backend) BufferToFlatData(buf backends.Buffer, flat any) error {
	cb, err := b.checkBuffer(buf)
	if err != nil {
		return err
	}
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice || v.Type().Elem() != cb.shape.DType.GoType() || v.Len() != cb.shape.Size() {
		return fmt.Errorf("cpu backend: BufferToFlatData: want []%s of length %d for %s, got %T of length %d",
			cb.shape.DType.GoType(), cb.shape.Size(), cb.shape, flat, v.Len())
	}
	reflect.Copy(v, reflect.ValueOf(cb.flat))
	return nil
}

// BufferFromFlatData copies flat into a new buffer of shape.
func (b *Backend) BufferFromFlatData(deviceNum backends.DeviceNum, flat any, shape shapes.Shape) (backends.Buffer, error) {
	if deviceNum != 0 {
		return nil, fmt.Errorf("cpu backend: no device %d", deviceNum)
	}
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice || v.Type().Elem() != shape.DType.GoType() || v.Len() != shape.Size() {
		return nil, fmt.Errorf("cpu backend: BufferFromFlatData: want []%s of length %d for %s, got %T",
			shape.DType.GoType(), shape.Size(), shape, flat)
	}
	if err := checkDType(shape.DType); err != nil {
		return nil, err
	}
	nb := b.buffers.get(shape)
	reflect.Copy(reflect.ValueOf(nb.flat), v)
	return nb, nil
}

// HasSharedBuffers returns true: buffers are Go memory that tensors may read
// and write directly.
func (b *Backend) HasSharedBuffers() bool { return true }

// NewSharedBuffer returns a new buffer of shape and its flat slice.
func (b *Backend) NewSharedBuffer(deviceNum backends.DeviceNum, shape shapes.Shape) (backends.Buffer, any, error) {
	if deviceNum != 0 {
		return nil, nil, fmt.Errorf("cpu backend: no device %d", deviceNum)
	}
	if err := checkDType(shape.DType); err != nil {
		return nil, nil, err
	}
	nb := b.buffers.get(shape)
	return nb, nb.flat, nil
}

// BufferData returns the buffer's flat slice.
func (b *Backend) BufferData(buf backends.Buffer) (any, error) {
	cb, err := b.checkBuffer(buf)
	if err != nil {
		return nil, err
	}
	return cb.flat, nil
}

// BufferCopyToDevice fails: there is one device.
func (b *Backend) BufferCopyToDevice(backends.Buffer, backends.DeviceNum) (backends.Buffer, error) {
	return nil, fmt.Errorf("cpu backend: there is only one device")
}
