// SPDX-License-Identifier: MIT

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const pkg = "github.com/devmemtcp/ncdevmem/udmabuf"

func ev(action, test, out string) string {
	s := `{"Action":"` + action + `","Package":"` + pkg + `"`
	if test != "" {
		s += `,"Test":"` + test + `"`
	}
	if out != "" {
		s += `,"Output":` + quote(out)
	}
	return s + "}\n"
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `"`, `\"`), "\n", `\n`) + `"`
}

func stream(lines ...string) string { return strings.Join(lines, "") }

func check(t *testing.T, input, allow string, args ...string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	a := filepath.Join(dir, "allow.txt")
	if err := os.WriteFile(a, []byte(allow), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(append([]string{"-tier", "unit", "-allow", a}, args...), strings.NewReader(input), &out, &errb)
	return code, out.String() + errb.String()
}

var skipRoot = stream(
	ev("run", "TestRootX", ""),
	ev("output", "TestRootX", "=== RUN   TestRootX\n"),
	ev("output", "TestRootX", "    x_test.go:9: needs root\n"),
	ev("output", "TestRootX", "--- SKIP: TestRootX (0.00s)\n"),
	ev("skip", "TestRootX", ""),
)

var passA = stream(ev("run", "TestA", ""), ev("pass", "TestA", ""))

// done is the package's own result, which every stream of a binary that did not die ends with.
var done = ev("pass", "", "")

func TestCountsAndClosingLine(t *testing.T) {
	in := passA + skipRoot + ev("output", "", "ok  \t"+pkg+"\t0.1s\n") + ev("pass", "", "")
	code, out := check(t, in, "TestRoot*   host-kernel tests run in the root tier\n")
	if code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if !strings.HasSuffix(out, "unit: 1 passed, 0 failed, 1 skipped\n") {
		t.Fatalf("closing line missing:\n%s", out)
	}
	if !strings.Contains(out, "skip udmabuf TestRootX: x_test.go:9: needs root") {
		t.Fatalf("skip reason not printed:\n%s", out)
	}
}

func TestUnexpectedSkipFails(t *testing.T) {
	code, out := check(t, passA+skipRoot, "TestGuest*   guest only\n")
	if code != 1 || !strings.Contains(out, "UNEXPECTED SKIP") || !strings.Contains(out, "needs root") {
		t.Fatalf("exit %d, want 1 with the reason:\n%s", code, out)
	}
}

func TestPackageQualifiedRule(t *testing.T) {
	if code, out := check(t, passA+skipRoot+done, "bind:TestRoot*   other package\n"); code != 1 {
		t.Fatalf("a rule for another package matched: exit %d\n%s", code, out)
	}
	if code, out := check(t, passA+skipRoot+done, "udmabuf:TestRoot*   this package\n"); code != 0 {
		t.Fatalf("a rule for this package did not match: exit %d\n%s", code, out)
	}
}

func TestFailurePrintsOutput(t *testing.T) {
	in := passA + ev("output", "TestB", "    b_test.go:3: got 2, want 3\n") + ev("fail", "TestB", "") + ev("fail", "", "")
	code, out := check(t, in, "")
	if code != 1 || !strings.Contains(out, "got 2, want 3") || !strings.Contains(out, "unit: 1 passed, 1 failed, 0 skipped") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestPackageFailureOutsideTests(t *testing.T) {
	in := passA + ev("output", "", "panic: boom\n") + ev("fail", "", "")
	code, out := check(t, in, "")
	if code != 1 || !strings.Contains(out, "failed outside any test") || !strings.Contains(out, "1 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	code, out = check(t, passA+done+`{"Action":"build-fail","Package":"x"}`+"\n", "")
	if code != 1 || !strings.Contains(out, "1 failed") {
		t.Fatalf("build failure: exit %d:\n%s", code, out)
	}
}

func TestNothingPassedFails(t *testing.T) {
	code, out := check(t, skipRoot, "TestRoot*  expected\n")
	if code != 1 || !strings.Contains(out, "no test passed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestAllowListNeedsReasons(t *testing.T) {
	code, out := check(t, passA, "TestRoot*\n")
	if code != 2 || !strings.Contains(out, "has no reason") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestFilesAndNoise(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.json")
	if err := os.WriteFile(f, []byte("console noise\n"+passA+done), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out := check(t, "", "", f)
	if code != 0 || !strings.Contains(out, "console noise") || !strings.Contains(out, "unit: 1 passed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestTierName(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"-tier", "a b"}, strings.NewReader(""), &out, &out); code != 2 {
		t.Fatalf("exit %d for a tier with a space", code)
	}
}

func TestSubtestsOfAllowedTests(t *testing.T) {
	sub := stream(ev("output", "TestGuestX/ipv4", "    x.go:1: guest only\n"), ev("skip", "TestGuestX/ipv4", ""), ev("pass", "TestGuestX", ""))
	if code, out := check(t, passA+sub+done, "TestGuest*   guest only\n"); code != 0 {
		t.Fatalf("a subtest of an allowed test: exit %d\n%s", code, out)
	}
	if code, out := check(t, passA+sub, "TestGuestX/ipv6   only v6\n"); code != 1 {
		t.Fatalf("a pattern with a slash matched another subtest: exit %d\n%s", code, out)
	}
}

func TestDiedUnderATest(t *testing.T) {
	// A binary that panics on -test.timeout: TestSlow started, no result, no package result.
	in := passA + ev("run", "TestSlow", "") + ev("output", "TestSlow", "=== RUN   TestSlow\n") +
		ev("output", "", "panic: test timed out after 8m0s\n")
	code, out := check(t, in, "")
	if code != 1 || !strings.Contains(out, "TestSlow (started, never finished") || !strings.Contains(out, "1 passed, 1 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestDiedBetweenTests(t *testing.T) {
	// Every test that started finished, but the package never wrote its result.
	code, out := check(t, passA+ev("output", "", "signal: killed\n"), "")
	if code != 1 || !strings.Contains(out, "ended without a result") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	// The same stream with the package's own result is fine.
	if code, out := check(t, passA+ev("pass", "", ""), ""); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}
