// SPDX-License-Identifier: MIT

package pattern_test

import (
	"fmt"

	"github.com/devmemtcp/ncdevmem/pattern"
)

func Example() {
	// A sender fills each write from the flow's running offset; a receiver checks each read the same
	// way, whatever sizes the kernel split the stream into.
	buf := make([]byte, 10)
	pattern.Fill(buf, 250)
	fmt.Printf("% x\n", buf)

	buf[7] = 0
	fmt.Println(pattern.Check(2, buf, 250))
	// Output:
	// fb fc fd fe ff 01 02 03 04 05
	// flow 2: payload mismatch at stream offset 257: expected 0x03, got 0x00
}

func ExampleNewSeq() {
	// The kernel selftest's `ncdevmem -v 7` stream: 1..6 then '\n'.
	q := pattern.NewSeq(7)
	buf := make([]byte, 9)
	q.Fill(buf, 0)
	fmt.Printf("% x\n", buf)
	fmt.Println(q.Verify(buf[3:], 3))
	// Output:
	// 01 02 03 04 05 06 0a 01 02
	// -1
}
