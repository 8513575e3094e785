package weights

import (
	"bytes"
	"encoding/binary"
	"math"
)

// ggufBuilder writes GGUF bytes field by field, so that tests can make
// valid files and every kind of corrupt one.
type ggufBuilder struct{ bytes.Buffer }

func (b *ggufBuilder) u32(v uint32) *ggufBuilder {
	binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}

func (b *ggufBuilder) u64(v uint64) *ggufBuilder {
	binary.Write(&b.Buffer, binary.LittleEndian, v)
	return b
}

func (b *ggufBuilder) str(s string) *ggufBuilder {
	b.u64(uint64(len(s)))
	b.WriteString(s)
	return b
}

// header writes the magic, version and counts.
func (b *ggufBuilder) header(version uint32, nTensors, nKV uint64) *ggufBuilder {
	b.WriteString("GGUF")
	return b.u32(version).u64(nTensors).u64(nKV)
}

func (b *ggufBuilder) kvString(key, val string) *ggufBuilder {
	return b.str(key).u32(uint32(GGUFString)).str(val)
}

func (b *ggufBuilder) kvU32(key string, val uint32) *ggufBuilder {
	return b.str(key).u32(uint32(GGUFUint32)).u32(val)
}

func (b *ggufBuilder) kvF32(key string, val float32) *ggufBuilder {
	return b.str(key).u32(uint32(GGUFFloat32)).u32(math.Float32bits(val))
}

func (b *ggufBuilder) tensor(name string, typeID uint32, offset uint64, ne ...uint64) *ggufBuilder {
	b.str(name).u32(uint32(len(ne)))
	for _, d := range ne {
		b.u64(d)
	}
	return b.u32(typeID).u64(offset)
}

// pad writes zeros up to the next multiple of align.
func (b *ggufBuilder) pad(align int) *ggufBuilder {
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	return b
}

func (b *ggufBuilder) raw(bs ...byte) *ggufBuilder {
	b.Write(bs)
	return b
}

func (b *ggufBuilder) data(n int) *ggufBuilder {
	b.Write(make([]byte, n))
	return b
}

// sampleGGUF is a small valid file: two metadata entries, an F32 [2, 4]
// tensor (ne [4, 2]) and a Q8_0 row of 32 values.
func sampleGGUF() []byte {
	var b ggufBuilder
	b.header(3, 2, 2).kvString("general.architecture", "test").kvU32("general.alignment", 32)
	b.tensor("a", 0, 0, 4, 2).tensor("q", 8, 32, 32)
	b.pad(32)
	vals := F32Bytes([]float32{1, 2, 3, 4, 5, 6, 7, 8})
	b.Write(vals)
	b.data(32 - len(vals))
	q := make([]byte, 34)
	binary.LittleEndian.PutUint16(q, Float32ToF16(0.5))
	for i := range 32 {
		q[2+i] = byte(int8(i - 16))
	}
	b.Write(q)
	return b.Bytes()
}
