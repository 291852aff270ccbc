package ruletest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// IsTestFile tells whether a file is a rule test file by its name: *_test.yaml or
// *_test.yml. Lint and test treat such files as tests, every other YAML file as a pipeline.
func IsTestFile(path string) bool {
	base := filepath.Base(path)
	return strings.HasSuffix(base, "_test.yaml") || strings.HasSuffix(base, "_test.yml")
}

// NameFilter returns a filter on case names from a regular expression ("" keeps every case).
func NameFilter(expr string) (func(string) bool, error) {
	if expr == "" {
		return func(string) bool { return true }, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	return re.MatchString, nil
}

// RunMatching runs the cases whose name keep accepts, several at once (each on its own
// pipeline and clock: cases share nothing), and returns their results in file order.
func (s *Suite) RunMatching(ctx context.Context, keep func(string) bool) []Result {
	var cases []int
	for i, c := range s.Spec.Tests {
		if keep(c.Name) {
			cases = append(cases, i)
		}
	}
	out := make([]Result, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(cases)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				out[j] = s.runCase(ctx, cases[j])
			}
		}()
	}
	for j := range cases {
		next <- j
	}
	close(next)
	wg.Wait()
	return out
}

// Report gathers the results of every file, for the summary, JUnit XML and coverage.
type Report struct {
	suites []suiteReport
	// rules are every rule of the streams under test; fired those that raised an alert.
	rules   map[ruleRef]bool
	streams map[string]int // records read, by file and stream ("file: stream")
}

type suiteReport struct {
	file    string
	results []Result
	broken  error // the file did not load
}

// Add records a file's results.
func (r *Report) Add(s *Suite, results []Result) {
	if r.rules == nil {
		r.rules, r.streams = map[ruleRef]bool{}, map[string]int{}
	}
	r.suites = append(r.suites, suiteReport{file: s.File, results: results})
	for _, ref := range s.alertRules {
		ref.stream = s.Spec.Pipeline + ": " + ref.stream
		r.rules[ref] = r.rules[ref] || false
	}
	for _, st := range s.cfg.Streams {
		if len(s.Spec.Streams) == 0 || slices.Contains(s.Spec.Streams, st.Name) {
			r.streams[s.Spec.Pipeline+": "+st.Name] += 0
		}
	}
	for _, res := range results {
		for ref := range res.fired {
			ref.stream = s.Spec.Pipeline + ": " + ref.stream
			if _, ok := r.rules[ref]; ok {
				r.rules[ref] = true
			}
		}
		for name, n := range res.in {
			if key := s.Spec.Pipeline + ": " + name; n > 0 {
				r.streams[key] += n
			}
		}
	}
}

// Broken records a file that could not be loaded.
func (r *Report) Broken(file string, err error) {
	r.suites = append(r.suites, suiteReport{file: file, broken: err})
}

// Summary is the last line: counts and time.
func (r *Report) Summary(took time.Duration) string {
	var cases, failed, broken int
	for _, s := range r.suites {
		if s.broken != nil {
			broken++
		}
		for _, res := range s.results {
			cases++
			if !res.Passed() {
				failed++
			}
		}
	}
	status := "ok"
	if failed > 0 || broken > 0 {
		status = "FAIL"
	}
	msg := fmt.Sprintf("%s: %d %s, %d %s", status, len(r.suites), plural(len(r.suites), "file"), cases, plural(cases, "case"))
	if failed > 0 {
		msg += fmt.Sprintf(", %d failed", failed)
	}
	if broken > 0 {
		msg += fmt.Sprintf(", %d %s with errors", broken, plural(broken, "file"))
	}
	return msg + fmt.Sprintf(" (%s)", took.Round(time.Millisecond))
}

func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}

// WriteCoverage reports the rules that never raised an alert and the streams that never read
// a record, over every case run.
func (r *Report) WriteCoverage(w io.Writer) {
	var unfired []string
	for ref, fired := range r.rules {
		if !fired {
			unfired = append(unfired, fmt.Sprintf("%s %s: rule %s", ref.stream, ref.processor, ref.rule))
		}
	}
	slices.Sort(unfired)
	var idle []string
	for _, name := range slices.Sorted(maps.Keys(r.streams)) {
		if r.streams[name] == 0 {
			idle = append(idle, name)
		}
	}
	fmt.Fprintf(w, "coverage: %d of %d rules raised an alert, %d of %d streams read a record\n",
		len(r.rules)-len(unfired), len(r.rules), len(r.streams)-len(idle), len(r.streams))
	for _, u := range unfired {
		fmt.Fprintf(w, "  rule never fired: %s\n", u)
	}
	for _, s := range idle {
		fmt.Fprintf(w, "  stream never exercised: %s\n", s)
	}
}

// JUnit XML, as CI systems read it (one testsuite per file, one testcase per case).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",cdata"`
}

// WriteJUnit writes the results as JUnit XML.
func (r *Report) WriteJUnit(w io.Writer) error {
	var out junitSuites
	for _, s := range r.suites {
		js := junitSuite{Name: s.file}
		if s.broken != nil {
			js.Tests, js.Errors = 1, 1
			js.Cases = append(js.Cases, junitCase{Name: "load", Classname: s.file, File: s.file,
				Error: &junitFailure{Message: "the test file has errors", Text: s.broken.Error()}})
		}
		for _, res := range s.results {
			jc := junitCase{Name: res.Name, Classname: s.file, File: res.Pos.File, Line: res.Pos.Line, Time: res.Duration.Seconds()}
			js.Tests++
			js.Time += res.Duration.Seconds()
			switch {
			case res.Err != nil:
				js.Errors++
				jc.Error = &junitFailure{Message: res.Err.Error(), Text: res.Err.Error()}
			case len(res.Failures) > 0:
				js.Failures++
				var text []string
				for _, f := range res.Failures {
					text = append(text, f.String())
				}
				jc.Failure = &junitFailure{Message: fmt.Sprintf("%d expectations failed, first: %s", len(res.Failures), res.Failures[0].What), Text: strings.Join(text, "\n")}
			}
			js.Cases = append(js.Cases, jc)
		}
		out.Suites = append(out.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnitFile writes the JUnit XML to path.
func (r *Report) WriteJUnitFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := r.WriteJUnit(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
