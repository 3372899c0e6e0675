package rx

import (
	"github.com/devmemtcp/ncdevmem/internal/uapi"
)

// tokenBatch collects frag tokens to hand back with SO_DEVMEM_DONTNEED. Consecutive tokens are
// coalesced into one dmabuf_token range (the kernel allocates tokens lowest-free-first, so a flow
// whose tokens come back promptly sees long runs). A batch is full at MAX_DONTNEED_TOKENS ranges
// or MAX_DONTNEED_FRAGS tokens, the most one call will look at: a bigger call is refused
// (EINVAL) or silently cut short.
type tokenBatch struct {
	ranges   []uapi.DmabufToken // cap MAX_DONTNEED_TOKENS, preallocated
	count    int                // tokens in ranges
	coalesce bool
}

func newTokenBatch(coalesce bool) tokenBatch {
	return tokenBatch{ranges: make([]uapi.DmabufToken, 0, uapi.MAX_DONTNEED_TOKENS), coalesce: coalesce}
}

// full reports whether one more token might not fit.
func (b *tokenBatch) full() bool {
	return len(b.ranges) == uapi.MAX_DONTNEED_TOKENS || b.count == uapi.MAX_DONTNEED_FRAGS
}

// add appends token; the caller flushes first when full.
func (b *tokenBatch) add(token uint32) {
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

func (b *tokenBatch) reset() {
	b.ranges = b.ranges[:0]
	b.count = 0
}
