// SPDX-License-Identifier: MIT

//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package rx

import (
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// TokenBatch collects frag tokens to hand back with SO_DEVMEM_DONTNEED. Consecutive tokens are
// coalesced into one dmabuf_token range when asked (the kernel allocates tokens lowest-free-first,
// so a flow whose tokens come back promptly sees long runs). A batch is full at its range limit
// (at most MAX_DONTNEED_TOKENS) or at MAX_DONTNEED_FRAGS tokens, the most one call will look at: a
// bigger call is refused (EINVAL) or silently cut short. Nothing is allocated after NewTokenBatch.
type TokenBatch struct {
	ranges    []uapi.DmabufToken // cap MAX_DONTNEED_TOKENS, preallocated
	count     int                // tokens in ranges
	coalesce  bool
	maxRanges int
}

// NewTokenBatch returns an empty batch of at most maxRanges ranges (clamped to 1..128; 1 without
// coalescing is the C ncdevmem's one token per call).
func NewTokenBatch(coalesce bool, maxRanges int) TokenBatch {
	return TokenBatch{ranges: make([]uapi.DmabufToken, 0, uapi.MAX_DONTNEED_TOKENS), coalesce: coalesce,
		maxRanges: min(max(maxRanges, 1), uapi.MAX_DONTNEED_TOKENS)}
}

func newTokenBatch(coalesce bool) TokenBatch {
	return NewTokenBatch(coalesce, uapi.MAX_DONTNEED_TOKENS)
}

// Full reports whether one more token might not fit: flush before Add.
func (b *TokenBatch) Full() bool {
	return len(b.ranges) >= b.maxRanges || b.count == uapi.MAX_DONTNEED_FRAGS
}

// Add appends token; the caller flushes first when Full.
func (b *TokenBatch) Add(token uint32) {
	b.count++
	if n := len(b.ranges); b.coalesce && n > 0 {
		last := &b.ranges[n-1]
		if last.TokenStart+last.TokenCount == token {
			last.TokenCount++
			return
		}
	}
	b.ranges = append(b.ranges, uapi.DmabufToken{TokenStart: token, TokenCount: 1})
}

// Count is the number of tokens in the batch; Ranges the number of dmabuf_token ranges.
func (b *TokenBatch) Count() int  { return b.count }
func (b *TokenBatch) Ranges() int { return len(b.ranges) }

// Option is the batch as the SO_DEVMEM_DONTNEED option value, valid until the next Add or Reset.
func (b *TokenBatch) Option() []byte { return tokenBytes(b.ranges) }

// Reset empties the batch.
func (b *TokenBatch) Reset() {
	b.ranges = b.ranges[:0]
	b.count = 0
}
