// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package udmabuf

import (
	"strconv"
	"testing"

	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// plainBuffer is a Buffer over a sealed memfd with a sync that does nothing: the copy and
// bookkeeping cost of ReadAt/WriteAt without a kernel that has udmabuf (this host has none).
func plainBuffer(tb testing.TB, size int64) *Buffer {
	tb.Helper()
	fk := newFakeKernel(tb, 1024)
	fk.sys.sync = func(int, *uapi.DmaBufSync) error { return nil }
	b, err := fk.sys.new(size, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	// Fault every page in now so benchmarks time copies, not first-touch page faults.
	if _, err := b.WriteAt(make([]byte, size), 0); err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestReadWriteAllocateNothing(t *testing.T) {
	b := plainBuffer(t, 1<<20)
	p := make([]byte, 4096)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := b.WriteAt(p, 8192); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ReadAt(p, 8192); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadAt+WriteAt allocate %.1f times per call pair", n)
	}
}

var benchSizes = []int{4 << 10, 64 << 10, 1 << 20}

func BenchmarkReadAt(b *testing.B)  { benchIO(b, (*Buffer).ReadAt) }
func BenchmarkWriteAt(b *testing.B) { benchIO(b, (*Buffer).WriteAt) }

// benchIO times op (ReadAt or WriteAt) on a fake-kernel buffer, walking it in slots of each size.
func benchIO(b *testing.B, op func(*Buffer, []byte, int64) (int, error)) {
	for _, n := range benchSizes {
		b.Run(strconv.Itoa(n>>10)+"KiB", func(b *testing.B) {
			buf := plainBuffer(b, 64<<20)
			p := make([]byte, n)
			slots := buf.Size() / int64(n)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				if _, err := op(buf, p, (i%slots)*int64(n)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRealReadAt measures a 4 KiB ReadAt on real udmabufs of several sizes, syncs included
// (only where /dev/udmabuf exists, e.g. the guest kernels; under QEMU TCG only the ratios mean
// anything). Each ReadAt costs two DMA_BUF_IOCTL_SYNC system calls, and the kernel may walk the
// buffer's scatterlist in each, which is why per-frag validation should sync once per batch
// (Mapped.BeginCPU, Bytes, EndCPU) rather than call ReadAt per frag.
func BenchmarkRealReadAt(b *testing.B) {
	if err := Available(); err != nil {
		b.Skipf("no usable udmabuf here: %v", err)
	}
	for _, size := range []int64{4 << 20, 64 << 20} {
		b.Run(human(size), func(b *testing.B) {
			buf, err := New(size, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			p := make([]byte, 4096)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := buf.ReadAt(p, 4096); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
