// SPDX-License-Identifier: MIT

// Command testcheck reads `go test -json` event streams of one test tier and judges them: it
// prints every failed test with its output and every skip with its reason, then one closing line
//
//	TIER: N passed, N failed, N skipped
//
// and exits 1 when a test or a package failed, when a test skipped that the tier's allow-list does
// not name, or when no test passed at all (a tier that ran nothing proves nothing).
//
//	go test -json ./... | go run ./internal/testcheck -tier unit -allow .ci/skips/unit.txt
//	go run ./internal/testcheck -tier guest-7.x -allow .ci/skips/guest-7.x.txt work/json/*.json
//
// An allow-list has one line per expected skip: a pattern, white space, and the reason the skip is
// expected on that tier (required: a skip nobody can explain is a failure). The pattern is a
// path.Match glob over the test name (`TestRoot*`, `TestGuestNIC*/netdevsim`; a pattern without a
// slash covers the subtests of the tests it names), optionally
// prefixed with a package path suffix and a colon (`udmabuf:TestRealUdmabuf*`). Lines starting
// with # are comments.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tier := fs.String("tier", "", "name of the tier, printed before the counts (one word)")
	allowFile := fs.String("allow", "", "file of skips this tier expects (pattern and reason per line)")
	quiet := fs.Bool("q", false, "do not echo the packages' own summary lines (ok/FAIL pkg)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *tier == "" || strings.ContainsAny(*tier, " \t:") {
		fmt.Fprintln(stderr, "testcheck: -tier needs one word without spaces or colons (e.g. -tier unit)")
		return 2
	}
	var allow []allowRule
	if *allowFile != "" {
		var err error
		if allow, err = readAllow(*allowFile); err != nil {
			fmt.Fprintf(stderr, "testcheck: %v\n", err)
			return 2
		}
	}
	c := newChecker(allow)
	if !*quiet {
		c.echo = stdout
	}
	if fs.NArg() == 0 {
		if err := c.read(stdin, "stdin"); err != nil {
			fmt.Fprintf(stderr, "testcheck: %v\n", err)
			return 2
		}
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(stderr, "testcheck: %v\n", err)
			return 2
		}
		err = c.read(f, name)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "testcheck: %v\n", err)
			return 2
		}
	}
	return c.report(*tier, stdout)
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

type key struct{ pkg, test string }

type allowRule struct {
	pkg, pattern, reason string
	line                 int
	used                 bool
}

func readAllow(name string) ([]allowRule, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("reading the allow-list: %w", err)
	}
	var rules []allowRule
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pat, reason, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		reason = strings.TrimSpace(reason)
		if reason == "" {
			return nil, fmt.Errorf("%s:%d: %q has no reason: say why this skip is expected", name, i+1, pat)
		}
		r := allowRule{pattern: pat, reason: reason, line: i + 1}
		if p, t, ok := strings.Cut(pat, ":"); ok {
			r.pkg, r.pattern = p, t
		}
		if _, err := path.Match(r.pattern, "x"); err != nil {
			return nil, fmt.Errorf("%s:%d: bad pattern %q: %v", name, i+1, pat, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (r *allowRule) matches(k key) bool {
	if r.pkg != "" && k.pkg != r.pkg && !strings.HasSuffix(k.pkg, "/"+r.pkg) {
		return false
	}
	name := k.test
	if !strings.Contains(r.pattern, "/") {
		// A pattern without a slash names top-level tests and so covers their subtests.
		name, _, _ = strings.Cut(name, "/")
	}
	ok, _ := path.Match(r.pattern, name)
	return ok
}

type checker struct {
	allow   []allowRule
	echo    io.Writer
	output  map[key][]string
	result  map[key]string
	order   []key
	pkgFail []string
	// pkgDone says whether a package's stream ended with its own pass/fail: a test binary that
	// crashed or was killed (a panic on -test.timeout, a guest that died) never writes one.
	pkgDone map[string]bool
	pkgs    []string
}

func newChecker(allow []allowRule) *checker {
	return &checker{allow: allow, output: map[key][]string{}, result: map[key]string{}, pkgDone: map[string]bool{}}
}

// read consumes one event stream. Lines that are not JSON (a build error printed by go test on
// stdout, a guest's console noise) are echoed and otherwise ignored: the events decide.
func (c *checker) read(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			if c.echo != nil && len(line) > 0 {
				fmt.Fprintf(c.echo, "%s\n", line)
			}
			continue
		}
		c.add(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

func (c *checker) add(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output", "build-output":
		if e.Test == "" {
			// The package's own lines: "ok  pkg 1.2s", "FAIL pkg", build errors, panics outside a test.
			if c.echo != nil && pkgSummary(e.Output) {
				fmt.Fprint(c.echo, e.Output)
			}
		}
		c.output[k] = append(c.output[k], e.Output)
	case "run":
		if _, seen := c.result[k]; !seen {
			c.order = append(c.order, k)
			c.result[k] = ""
		}
		c.pkgSeen(e.Package)
	case "pass", "fail", "skip":
		c.pkgSeen(e.Package)
		if e.Test == "" {
			c.pkgDone[e.Package] = true
			if e.Action == "fail" {
				c.pkgFail = append(c.pkgFail, e.Package)
			}
			return
		}
		if _, seen := c.result[k]; !seen {
			c.order = append(c.order, k)
		}
		c.result[k] = e.Action
	case "build-fail":
		c.pkgFail = append(c.pkgFail, e.Package)
		c.pkgDone[e.Package] = true
	}
}

func (c *checker) pkgSeen(pkg string) {
	if _, ok := c.pkgDone[pkg]; !ok {
		c.pkgDone[pkg] = false
		c.pkgs = append(c.pkgs, pkg)
	}
}

// pkgSummary tells the package-level lines worth echoing while a tier runs.
func pkgSummary(s string) bool {
	return strings.HasPrefix(s, "ok ") || strings.HasPrefix(s, "FAIL") || strings.HasPrefix(s, "?") ||
		strings.HasPrefix(s, "panic:") || strings.Contains(s, "[build failed]") || strings.Contains(s, "[setup failed]")
}

// reason is the skip message: the test's output without its own "=== RUN" / "--- SKIP" frame.
func (c *checker) reason(k key) string {
	var parts []string
	for _, l := range c.output[k] {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " | ")
}

func (c *checker) report(tier string, w io.Writer) int {
	var passed, failed, skipped, unexpected int
	sort.SliceStable(c.order, func(i, j int) bool { return c.order[i].pkg < c.order[j].pkg })
	for _, k := range c.order {
		switch c.result[k] {
		case "":
			// Started and never finished: the binary died under it (timeout panic, crash, kill).
			failed++
			fmt.Fprintf(w, "\nFAIL %s %s (started, never finished: the test binary died under it)\n", k.pkg, k.test)
			for _, l := range c.output[k] {
				fmt.Fprintf(w, "    %s", l)
			}
		case "pass":
			passed++
		case "fail":
			failed++
			fmt.Fprintf(w, "\nFAIL %s %s\n", k.pkg, k.test)
			for _, l := range c.output[k] {
				fmt.Fprintf(w, "    %s", l)
			}
		case "skip":
			skipped++
			rule := c.allowed(k)
			if rule == nil {
				unexpected++
				fmt.Fprintf(w, "UNEXPECTED SKIP %s %s: %s\n", k.pkg, k.test, c.reason(k))
			} else {
				fmt.Fprintf(w, "skip %s %s: %s\n", short(k.pkg), k.test, c.reason(k))
			}
		}
	}
	pkgFailed := uniq(c.pkgFail)
	// A package that failed with no failed test (a build error, a panic between tests, a crash of
	// the test binary) is one more failure.
	for _, p := range pkgFailed {
		if !c.anyFailed(p) {
			failed++
			fmt.Fprintf(w, "\nFAIL %s (the package failed outside any test)\n", p)
			for _, l := range c.output[key{p, ""}] {
				fmt.Fprintf(w, "    %s", l)
			}
		}
	}
	for _, p := range c.pkgs {
		if !c.pkgDone[p] && !c.anyUnfinished(p) {
			failed++
			fmt.Fprintf(w, "\nFAIL %s (its output ended without a result: the test binary died)\n", p)
			for _, l := range c.output[key{p, ""}] {
				fmt.Fprintf(w, "    %s", l)
			}
		}
	}
	code := 0
	var why []string
	if failed > 0 {
		code = 1
		why = append(why, fmt.Sprintf("%d failed", failed))
	}
	if unexpected > 0 {
		code = 1
		why = append(why, fmt.Sprintf("%d skipped that %s does not expect (add them to its allow-list with the reason, or make them run)", unexpected, tier))
	}
	if passed == 0 {
		code = 1
		why = append(why, "no test passed: the tier proved nothing")
	}
	if code != 0 {
		fmt.Fprintf(w, "%s FAILED: %s\n", tier, strings.Join(why, "; "))
	}
	fmt.Fprintf(w, "%s: %d passed, %d failed, %d skipped\n", tier, passed, failed, skipped)
	return code
}

func (c *checker) allowed(k key) *allowRule {
	for i := range c.allow {
		if c.allow[i].matches(k) {
			c.allow[i].used = true
			return &c.allow[i]
		}
	}
	return nil
}

func (c *checker) anyUnfinished(pkg string) bool {
	for k, r := range c.result {
		if k.pkg == pkg && r == "" {
			return true
		}
	}
	return false
}

func (c *checker) anyFailed(pkg string) bool {
	for k, r := range c.result {
		if k.pkg == pkg && r == "fail" {
			return true
		}
	}
	return false
}

func short(pkg string) string {
	const mod = "github.com/devmemtcp/ncdevmem/"
	return strings.TrimPrefix(pkg, mod)
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
