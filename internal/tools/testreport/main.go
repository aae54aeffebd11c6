// Command testreport reads `go test -json` output on stdin and prints what a
// person needs: the output of failed tests, the skipped tests with their
// reasons, one line per package, and a closing "N passed, N failed, N
// skipped" line. With -no-skips (used in CI) a skipped test is a failure:
// in CI every prerequisite is installed, so nothing may be skipped.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	noSkips := flag.Bool("no-skips", false, "treat skipped tests as failures")
	flag.Parse()
	output := map[string]*strings.Builder{}
	var passed, failed, skipped int
	var failures, skips, pkgs []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Println(sc.Text()) // build errors and other plain lines
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			fmt.Print(e.Output)
		case "output":
			b := output[key]
			if b == nil {
				b = &strings.Builder{}
				output[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgs = append(pkgs, fmt.Sprintf("%-4s %s (%.1fs)", e.Action, e.Package, e.Elapsed))
				if e.Action == "fail" {
					failed++
					if b := output[key]; b != nil {
						failures = append(failures, fmt.Sprintf("=== package %s\n%s", e.Package, b.String()))
					}
				}
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failed++
				failures = append(failures, fmt.Sprintf("=== FAIL %s %s\n%s", e.Package, e.Test, output[key]))
			case "skip":
				skipped++
				reason := ""
				if b := output[key]; b != nil {
					reason = strings.TrimSpace(b.String())
				}
				skips = append(skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason))
			}
			delete(output, key)
		}
	}
	for _, f := range failures {
		fmt.Println(f)
	}
	sort.Strings(skips)
	for _, s := range skips {
		fmt.Println("SKIP", s)
	}
	for _, p := range pkgs {
		fmt.Println(p)
	}
	if *noSkips && skipped > 0 {
		fmt.Printf("%d tests were skipped; in CI nothing may be skipped\n", skipped)
		failed += skipped
		skipped = 0
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		os.Exit(1)
	}
}
