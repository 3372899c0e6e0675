package pattern

import "testing"

// The figures the issue asks for: Verify and Fill against copy of the same size. Run with
// `go test -run '^$' -bench . ./pattern/`; b.SetBytes makes the MB/s column comparable.

var benchSizes = []struct {
	name string
	n    int
}{{"4KiB", 4 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

func BenchmarkVerify(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			Fill(buf, 12345)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if Verify(buf, 12345) != -1 {
					b.Fatal("mismatch")
				}
			}
		})
	}
}

func BenchmarkFill(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				Fill(buf, 12345)
			}
		})
	}
}

func BenchmarkCopy(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			src := make([]byte, s.n)
			dst := make([]byte, s.n)
			Fill(src, 0)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				copy(dst, src)
			}
		})
	}
}

func BenchmarkSeqVerify(b *testing.B) {
	q := NewSeq(7)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			q.Fill(buf, 99)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				if q.Verify(buf, 99) != -1 {
					b.Fatal("mismatch")
				}
			}
		})
	}
}

func BenchmarkSeqFill(b *testing.B) {
	q := NewSeq(7)
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			buf := make([]byte, s.n)
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			for b.Loop() {
				q.Fill(buf, 99)
			}
		})
	}
}
