package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// syntaxError turns a yaml.v3 error into an *Error at the place a user has to change.
//
// yaml.v3 names a line only, and not always the problem's: for a scanner error it is where
// the token being scanned started, for a parser error where the enclosing collection
// started, counted from 0. So the problem is found again as the shortest prefix of the file
// that fails the same way (whole lines first, then the bytes of that line): its last byte is
// where yaml.v3 stopped. A few common mistakes then get a message that says what to fix;
// each of those is believed only when making the fix it suggests lets the file parse past
// the problem, and otherwise yaml.v3's wording is kept.
func (l *loader) syntaxError(data []byte, err error) *Error {
	msg, line := splitYAMLError(err)
	s := newSyntaxSearch(data, msg)
	off, ok := s.locate(line)
	if !ok {
		pos := Pos{File: l.file, Line: max(line, 1), Col: 1}
		if pos.Line <= len(s.lines) {
			pos.Col = s.runeCol(pos.Line, indentWidth(s.lines[pos.Line-1]))
		}
		return &Error{Pos: pos, Msg: "invalid YAML: " + msg}
	}
	f := s.explain(off, line)
	line, col := s.lineCol(f.off)
	return &Error{Pos: Pos{File: l.file, Line: line, Col: col}, Msg: "invalid YAML: " + f.msg}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

// splitYAMLError returns yaml.v3's message without its "yaml: line N: " prefix, and N (0
// when it gave none).
func splitYAMLError(err error) (msg string, line int) {
	msg = err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return msg[len(m[0]):], line
	}
	return strings.TrimPrefix(msg, "yaml: "), 0
}

// yamlProblem parses every document of data and returns the first error's message and
// line, or failed=false when data is valid YAML.
func yamlProblem(data []byte) (msg string, line int, failed bool) {
	err := parseYAMLStream(data)
	if err == nil {
		return "", 0, false
	}
	msg, line = splitYAMLError(err)
	return msg, line, true
}

func parseYAMLStream(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// parseYAMLPrefix parses a prefix of the file that is valid YAML and returns its last
// document: the one the next line goes on.
func parseYAMLPrefix(data []byte) (doc *yaml.Node, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			doc, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var next yaml.Node
		switch err := dec.Decode(&next); {
		case errors.Is(err, io.EOF):
			return doc, doc != nil
		case err != nil:
			return nil, false
		}
		doc = &next
	}
}

const (
	// maxSyntaxSearch bounds the file size for which syntax errors are located by parsing
	// prefixes (a few dozen parses); larger files keep yaml.v3's line.
	maxSyntaxSearch = 1 << 20
	// linearParseBytes bounds how much is parsed while the bytes of the failing line are
	// tried one by one from its start (at most 160 of them); the rest of a long line is
	// bisected.
	linearParseBytes = 8 << 20
)

// syntaxSearch locates and explains one yaml.v3 error in data.
type syntaxSearch struct {
	data   []byte
	msg    string   // yaml.v3's message, without "yaml: line N: "
	lines  []string // data split at "\n"
	starts []int    // byte offset where each line starts
}

func newSyntaxSearch(data []byte, msg string) *syntaxSearch {
	s := &syntaxSearch{data: data, msg: msg, lines: strings.Split(string(data), "\n")}
	s.starts = make([]int, len(s.lines))
	for i := 1; i < len(s.lines); i++ {
		s.starts[i] = s.starts[i-1] + len(s.lines[i-1]) + 1
	}
	return s
}

// fails reports whether prefix fails to parse with the same message as the whole file.
func (s *syntaxSearch) fails(prefix []byte) bool {
	msg, _, failed := yamlProblem(prefix)
	return failed && msg == s.msg
}

// lineEnd is the offset just past line n's content (before its "\n").
func (s *syntaxSearch) lineEnd(n int) int {
	return s.starts[n-1] + len(s.lines[n-1])
}

// lineOf returns the 1-based line holding offset off.
func (s *syntaxSearch) lineOf(off int) int {
	return sort.Search(len(s.starts), func(i int) bool { return s.starts[i] > off })
}

// lineCol converts a byte offset into yaml.v3's line and column (columns count characters).
func (s *syntaxSearch) lineCol(off int) (line, col int) {
	line = s.lineOf(off)
	return line, s.runeCol(line, off-s.starts[line-1])
}

func (s *syntaxSearch) runeCol(line, byteIdx int) int {
	return utf8.RuneCountInString(s.lines[line-1][:byteIdx]) + 1
}

// locate returns the offset of the byte yaml.v3 stopped at: the last byte of the shortest
// prefix that fails with the same message. from is the line yaml.v3 named.
func (s *syntaxSearch) locate(from int) (int, bool) {
	if len(s.data) > maxSyntaxSearch {
		return 0, false
	}
	// yaml.v3 names the line where the construct that failed starts (or the line before,
	// for a parser error), but where it gave up when that is the first line.
	if from > 1 && s.fails(s.data[:s.lineEnd(min(from, len(s.lines))-1)]) {
		from = 1
	}
	n := s.firstFailingLine(max(from, 1))
	if n == 0 {
		return 0, false
	}
	start, end := s.starts[n-1], s.lineEnd(n)
	probes := min(160, max(8, linearParseBytes/len(s.data)))
	if s.inFlow(n) {
		// The error is in the flow collection, so the search ends where it closes; one
		// left open (or broken) is searched over the lines a flow collection may take.
		first := s.flowStart(from, n)
		start, end := s.starts[first-1], s.lineEnd(min(len(s.lines), max(n, first+20)))
		if closed := scanLine(string(s.data[start:end])).closed; closed >= 0 {
			end = start + closed + 1
		}
		flowProbes := min(2000, max(8, linearParseBytes/len(s.data)))
		if o, ok := s.firstFailingInFlow(start, end, flowProbes); ok {
			return s.tokenStart(o), true
		}
	}
	o := start
	for ; o < end && o-start < probes; o++ {
		if s.fails(s.data[:o+1]) {
			return s.tokenStart(o), true
		}
	}
	if o < end {
		// A very long line: bisect the rest of it.
		o += sort.Search(end-o, func(i int) bool { return s.fails(s.data[:o+i+1]) })
		if o < end {
			return s.tokenStart(o), true
		}
	}
	return start + indentWidth(s.lines[n-1]), true
}

// firstFailingInFlow is the byte search for an error inside a flow collection ({...} or
// [...]) that opens at start, up to end: each prefix is parsed with the brackets it leaves
// open closed, since a cut-off flow collection fails with the same message as a broken one.
// That also finds errors on the lines a flow collection goes on over. The first probes
// bytes are tried one by one, the rest is bisected.
func (s *syntaxSearch) firstFailingInFlow(start, end, probes int) (int, bool) {
	stop := false
	failsClosed := func(o int) bool {
		scan := scanLine(string(s.data[start : o+1]))
		if scan.quote >= 0 {
			return false // inside a quoted string: cutting there fails otherwise
		}
		var closers strings.Builder
		for i := len(scan.open) - 1; i >= 0 && !scan.mismatch; i-- {
			closers.WriteByte(closerOf[s.data[start+scan.open[i]]])
		}
		stop = scan.mismatch
		return s.fails(append(s.data[:o+1:o+1], closers.String()...))
	}
	o := start
	for ; o < end && o-start < probes; o++ {
		if failsClosed(o) {
			return o, true
		}
		if stop {
			return 0, false
		}
	}
	if o < end {
		o += sort.Search(end-o, func(i int) bool { return failsClosed(o + i) })
		return o, o < end
	}
	return 0, false
}

var closerOf = map[byte]byte{'{': '}', '[': ']'}

// inFlow reports whether the error is one a flow collection ({...} or [...]) cut off at
// the end of a prefix fails with too, so that the byte search must close it.
func (s *syntaxSearch) inFlow(n int) bool {
	switch {
	case strings.HasPrefix(s.msg, "did not find expected ',' or "):
		return true
	case s.msg == "did not find expected node content":
		scan := scanLine(s.lines[n-1])
		return len(scan.open) > 0 || scan.mismatch
	}
	return false
}

// flowStart returns the line where the flow collection that failed opens. yaml.v3 names
// the line before it (counting from 0), unless it opens on the first line; a flow
// collection that opens and closes on the failing line n is searched from n.
func (s *syntaxSearch) flowStart(yamlLine, n int) int {
	for _, l := range []int{yamlLine + 1, 1} {
		if l <= n {
			if scan := scanLine(s.lines[l-1]); !scan.mismatch && scan.quote < 0 && len(scan.open) > 0 {
				return l
			}
		}
	}
	return n
}

// firstFailingLine binary-searches the smallest number of leading lines of data that fail
// with the same message, starting from line from; 0 when none does.
func (s *syntaxSearch) firstFailingLine(from int) int {
	lo, hi := from, len(s.lines)
	if lo > hi || !s.fails(s.data[:s.lineEnd(hi)]) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if s.fails(s.data[:s.lineEnd(mid)]) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// tokenStart moves a parser error found at the ':' of "key: value" to the key: yaml.v3
// emits the key token only once it sees the ':', but the token starts at the key.
func (s *syntaxSearch) tokenStart(off int) int {
	if !strings.HasPrefix(s.msg, "did not find expected") {
		return off
	}
	if (s.data[off] == ' ' || s.data[off] == '\t') && off > 0 && s.data[off-1] == ':' {
		off-- // the ':' only counts once the blank after it is seen
	}
	if s.data[off] != ':' {
		return off
	}
	lineStart := s.starts[s.lineOf(off)-1]
	i := off
	for i > lineStart && !strings.ContainsRune(" \t{[,", rune(s.data[i-1])) {
		i--
	}
	return i
}

// finding is what syntaxError reports: where, and the message after "invalid YAML: ".
type finding struct {
	off int
	msg string
}

// explain turns the located problem into a finding: the first explanation that holds, or
// yaml.v3's own message at the located byte. yamlLine is the line yaml.v3 named.
func (s *syntaxSearch) explain(off, yamlLine int) finding {
	if off >= len(s.data) {
		return finding{off, s.msg} // yaml.v3 stopped at the end of the file
	}
	if m := unknownAnchorRE.FindStringSubmatch(s.msg); m != nil {
		line := s.lineOf(off)
		if i := strings.Index(s.lines[line-1], "*"+m[1]); i >= 0 {
			return finding{s.starts[line-1] + i, s.msg}
		}
		return finding{off, s.msg}
	}
	explanations := []func(off, yamlLine int) (finding, bool){
		s.unclosedQuote,
		s.runawayQuote,
		s.unclosedFlow,
		s.textAfterQuote,
		s.strayCloser,
		s.envRefInFlow,
		s.missingComma,
		s.badIndentation,
		s.plainValueNeedsQuotes,
		s.unknownEscape,
		s.tabIndentation,
	}
	for _, explain := range explanations {
		if f, ok := explain(off, yamlLine); ok {
			return f
		}
	}
	return finding{off, s.msg}
}

var unknownAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// parsesPast reports whether repaired, a copy of the file with a suggested fix applied
// (one that keeps every line where it is), parses, or fails only after line: then the fix
// removed the problem being explained.
func (s *syntaxSearch) parsesPast(repaired []byte, line int) bool {
	msg, _, failed := yamlProblem(repaired)
	if !failed {
		return true
	}
	r := newSyntaxSearch(repaired, msg)
	return line < len(r.lines) && !r.fails(repaired[:r.lineEnd(line)])
}

// replace returns a copy of the file with data[from:to] replaced by with.
func (s *syntaxSearch) replace(from, to int, with string) []byte {
	out := make([]byte, 0, len(s.data)+len(with))
	out = append(out, s.data[:from]...)
	out = append(out, with...)
	return append(out, s.data[to:]...)
}

// unclosedQuote explains a quoted string that reaches the end of the file, or a "---"
// line, without its closing quote: the located byte is the line it starts on.
func (s *syntaxSearch) unclosedQuote(off, yamlLine int) (finding, bool) {
	var line int
	switch s.msg {
	case "found unexpected end of stream":
		line = s.lineOf(off)
	case "found unexpected document indicator":
		// yaml.v3 names the line where the quoted string starts.
		line = yamlLine
	default:
		return finding{}, false
	}
	if line < 1 || line > len(s.lines) {
		return finding{}, false
	}
	q, ok := s.openQuoteOnLine(line)
	if !ok {
		return finding{}, false
	}
	return finding{q, fmt.Sprintf("the quoted string that starts here is never closed; end it with %c", s.data[q])}, true
}

// openQuoteOnLine finds the quote that starts a quoted string on line without closing it
// there. A quote starts a string when the file cut just after it fails as an unclosed
// quoted string; a quote inside a plain value (it's) does not.
func (s *syntaxSearch) openQuoteOnLine(line int) (int, bool) {
	text, start := s.lines[line-1], s.starts[line-1]
	for i := 0; i < len(text); i++ {
		if text[i] != '\'' && text[i] != '"' {
			continue
		}
		if msg, _, failed := yamlProblem(s.data[:start+i+1]); !failed || msg != "found unexpected end of stream" {
			continue
		}
		end := closingQuote(text, i)
		if end < 0 {
			return start + i, true
		}
		i = end
	}
	return 0, false
}

// closingQuote returns the index of the quote that closes the quoted string starting at
// text[open], or -1 when text ends first.
func closingQuote(text string, open int) int {
	q := text[open]
	for i := open + 1; i < len(text); i++ {
		switch {
		case q == '"' && text[i] == '\\':
			i++
		case text[i] == q && q == '\'' && i+1 < len(text) && text[i+1] == '\'':
			i++
		case text[i] == q:
			return i
		}
	}
	return -1
}

// entryLineRE matches a line that reads as a mapping entry ("key: value" or "- key:").
var entryLineRE = regexp.MustCompile(`^\s*(?:-\s+)?[A-Za-z_][\w.-]*:(?:\s|$)`)

// runawayQuote explains an error after a quoted string that was opened on an earlier line
// and meant to end there: its closing quote is missing, so YAML reads on to the next quote
// of the same kind, taking lines that read as mapping entries for text.
func (s *syntaxSearch) runawayQuote(off, _ int) (finding, bool) {
	line := s.lineOf(off)
	tried := 0
	for l := line - 1; l >= max(1, line-200) && tried < 3; l-- {
		q := scanLine(s.lines[l-1]).quote
		if q < 0 {
			continue
		}
		tried++
		open := s.starts[l-1] + q
		closeAt := closingQuote(string(s.data), open)
		if closeAt < 0 || s.lineOf(closeAt) > line {
			continue
		}
		closeLine := s.lineOf(closeAt)
		swallowsEntries := false
		for m := l + 1; m <= closeLine; m++ {
			text := s.lines[m-1]
			if m == closeLine {
				text = text[:closeAt-s.starts[m-1]]
			}
			swallowsEntries = swallowsEntries || entryLineRE.MatchString(text)
		}
		if !swallowsEntries || !s.parsesPast(s.replace(s.lineEnd(l), s.lineEnd(l), string(s.data[open])), line) {
			continue
		}
		return finding{open, fmt.Sprintf("the quoted string that starts here is not closed on this line, so it runs on to the %c on line %d and takes the lines in between as text; end it with %c on this line", s.data[open], closeLine, s.data[open])}, true
	}
	return finding{}, false
}

// unclosedFlow explains a { or [ left open on the problem line or one of the few lines
// before it. It is believed only when closing it at the end of its line makes the whole
// file parse, since a flow collection may legitimately go on over several lines.
func (s *syntaxSearch) unclosedFlow(off, _ int) (finding, bool) {
	line := s.lineOf(off)
	for l := line; l >= max(1, line-10); l-- {
		scan := scanLine(s.lines[l-1])
		open, end := scan.open, scan.end
		if scan.mismatch || scan.quote >= 0 || len(open) == 0 {
			continue
		}
		var closers strings.Builder
		for i := len(open) - 1; i >= 0; i-- {
			closers.WriteByte(closerOf[s.lines[l-1][open[i]]])
		}
		at := s.starts[l-1] + len(strings.TrimRight(s.lines[l-1][:end], " \t\r"))
		if _, _, failed := yamlProblem(s.replace(at, at, closers.String())); failed {
			continue
		}
		innermost := open[len(open)-1]
		what := map[byte]string{'{': "mapping", '[': "list"}[s.lines[l-1][innermost]]
		return finding{s.starts[l-1] + innermost, fmt.Sprintf(`this "%c" is never closed; add "%s" where the %s ends`, s.lines[l-1][innermost], closers.String(), what)}, true
	}
	return finding{}, false
}

// lineScan is what scanLine finds on one line of the file, read on its own.
type lineScan struct {
	open     []int // offsets of the { and [ it leaves open
	end      int   // where its content ends: the start of its first comment, or its length
	quote    int   // offset of a quote that starts a string not closed on the line, or -1
	mismatch bool  // it closes a bracket of another kind than the one open
	closed   int   // offset of the bracket that first closes every one opened, or -1
}

// scanLine reads one line (or several, for a flow collection that goes on over them) the way
// YAML's scanner would if it stood alone: quotes and brackets count only where a value may
// start, not inside a plain value (it's, a{b}).
func scanLine(line string) lineScan {
	scan := lineScan{end: len(line), quote: -1, closed: -1}
	nodeStart := true
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '#':
			if i == 0 || strings.IndexByte(" \t\n", line[i-1]) >= 0 {
				if scan.end == len(line) {
					scan.end = i
				}
				next := strings.IndexByte(line[i:], '\n')
				if next < 0 {
					return scan
				}
				i += next
				continue
			}
		case '\'', '"':
			if nodeStart {
				close := closingQuote(line, i)
				if close < 0 {
					scan.quote = i
					return scan
				}
				i, nodeStart = close, false
				continue
			}
		case '{', '[':
			if nodeStart {
				scan.open = append(scan.open, i)
				continue
			}
		case '}', ']':
			if len(scan.open) > 0 {
				if closerOf[line[scan.open[len(scan.open)-1]]] != c {
					scan.mismatch = true
					return scan
				}
				scan.open, nodeStart = scan.open[:len(scan.open)-1], false
				if len(scan.open) == 0 && scan.closed < 0 {
					scan.closed = i
				}
				continue
			}
		case ',':
			if len(scan.open) > 0 {
				nodeStart = true
				continue
			}
		case ':':
			if i+1 == len(line) || strings.ContainsRune(" \t\r", rune(line[i+1])) || len(scan.open) > 0 && strings.ContainsRune(",}]", rune(line[i+1])) {
				nodeStart = true
				continue
			}
		case '-', '?':
			if nodeStart && (i+1 == len(line) || line[i+1] == ' ') {
				continue
			}
		}
		nodeStart = false
	}
	return scan
}

// textAfterQuote explains a value that starts with a quoted string and goes on after its
// closing quote on the same line (when: "cpu" == metric): the whole value needs quoting.
func (s *syntaxSearch) textAfterQuote(off, _ int) (finding, bool) {
	line := s.lineOf(off)
	text, start := s.lines[line-1], s.starts[line-1]
	_, v := blockValue(text)
	if v < 0 || text[v] != '\'' && text[v] != '"' {
		return finding{}, false
	}
	close := closingQuote(text, v)
	if close < 0 || start+close >= off {
		return finding{}, false
	}
	end := valueEnd(text, close+1)
	after := close + 1 + indentWidth(text[close+1:end])
	if after >= end {
		return finding{}, false
	}
	if after == close+1 {
		// "abc"def: more likely a quote meant to be inside the string than a value
		// quoted in part.
		escaped := map[byte]string{'"': `\"`, '\'': "''"}[text[v]]
		if !s.parsesPast(s.replace(start+close, start+close+1, escaped), line) {
			return finding{}, false
		}
		return finding{start + close, fmt.Sprintf("this %c ends the quoted string, but the value goes on after it; a %c inside the string is written %s", text[v], text[v], escaped)}, true
	}
	quoted := quoteYAML(text[v:end])
	if !s.parsesPast(s.replace(start+v, start+end, quoted), line) {
		return finding{}, false
	}
	return finding{start + after, "the value starts with a quoted string but goes on after its closing quote; quote the whole value" + example(quoted)}, true
}

// strayCloser explains a } or ] that closes nothing.
func (s *syntaxSearch) strayCloser(off, _ int) (finding, bool) {
	c := s.data[off]
	if c != '}' && c != ']' || !strings.HasPrefix(s.msg, "did not find expected") {
		return finding{}, false
	}
	if !s.parsesPast(s.replace(off, off+1, ""), s.lineOf(off)) {
		return finding{}, false
	}
	return finding{off, fmt.Sprintf(`this "%c" closes nothing; remove it`, c)}, true
}

// envRefInFlow explains a ${VAR} in a plain value inside a flow collection
// ({listen: 127.0.0.1:${PORT}}), where YAML reads its "{" as the start of a mapping.
func (s *syntaxSearch) envRefInFlow(off, _ int) (finding, bool) {
	line := s.lineOf(off)
	text, lineStart := s.lines[line-1], s.starts[line-1]
	for r := strings.Index(text, "${"); r >= 0 && lineStart+r <= off; r = nextRef(text, r+2) {
		if scan := scanLine(text[:r]); len(scan.open) == 0 || scan.quote >= 0 || scan.mismatch || r > scan.end {
			continue // not inside a flow collection, or inside a quoted string or a comment
		}
		// The plain value runs back to the ": ", "," or bracket before it, and on past the
		// references' closing braces to the next "," or closing bracket.
		start := r
		for start > 0 && !strings.HasSuffix(text[:start], ": ") && strings.IndexByte(",{[", text[start-1]) < 0 {
			start--
		}
		start += indentWidth(text[start:])
		end := r
		for ; end < len(text) && text[end] != ',' && text[end] != ']'; end++ {
			if text[end] == '}' && strings.Count(text[start:end], "${") <= strings.Count(text[start:end], "}") {
				break
			}
		}
		value := strings.TrimRight(text[start:end], " \t")
		quoted := strconv.Quote(value)
		if !s.parsesPast(s.replace(lineStart+start, lineStart+start+len(value), quoted), line) {
			continue
		}
		return finding{lineStart + start, "inside {...} or [...], a value holding ${...} must be quoted, or YAML reads its \"{\" as the start of a mapping; write " + quoted}, true
	}
	return finding{}, false
}

// missingComma explains two entries of a flow collection with no "," between them.
func (s *syntaxSearch) missingComma(off, _ int) (finding, bool) {
	if !strings.HasPrefix(s.msg, "did not find expected ',' or ") || strings.IndexByte(",}]", s.data[off]) >= 0 {
		return finding{}, false
	}
	prev := len(bytes.TrimRight(s.data[:off], " \t\r\n"))
	if prev == 0 || prev == off || strings.IndexByte(",{[:", s.data[prev-1]) >= 0 || strings.IndexByte("{[", s.data[off]) >= 0 {
		return finding{}, false
	}
	if !s.parsesPast(s.replace(prev, prev, ","), s.lineOf(off)) {
		return finding{}, false
	}
	return finding{off, `a "," is missing before this entry`}, true
}

// badIndentation explains a line whose indentation matches none of the blocks open above
// it. It names the columns that would fix it: those where re-indenting the line (and the
// lines nested under it) lets the file parse past it.
func (s *syntaxSearch) badIndentation(off, _ int) (finding, bool) {
	line := s.lineOf(off)
	text := s.lines[line-1]
	indent := indentWidth(text)
	if line == 1 || indent == len(text) || strings.ContainsRune(text[:indent], '\t') {
		return finding{}, false
	}
	col := indent + 1
	doc, ok := parseYAMLPrefix(s.data[:s.lineEnd(line-1)])
	if !ok {
		return finding{}, false
	}
	blocks := openBlocks(doc)
	if len(blocks) == 0 {
		return finding{}, false
	}
	for _, b := range blocks {
		if b.col == col {
			return finding{}, false
		}
	}
	if deepest := blocks[len(blocks)-1]; col > deepest.col && isEmptyValue(deepest.last) {
		return finding{}, false // the line may start the value of the entry above it
	}
	// The line was meant to line up with the block just inside or just outside its column:
	// the innermost one when it is indented deeper than all of them.
	var near []openBlock
	for i := len(blocks) - 1; i >= 0; i-- {
		if blocks[i].col < col {
			if i+1 < len(blocks) {
				near = append(near, blocks[i+1])
			}
			near = append(near, blocks[i])
			break
		}
	}
	var fits []openBlock
	for _, b := range near {
		// Either the line alone is off, or it was moved with the lines nested under it.
		for _, withNested := range []bool{false, true} {
			if repaired, last := s.reindent(line, col, b.col, withNested); s.parsesPast(repaired, last) {
				fits = append(fits, b)
				break
			}
		}
	}
	start := s.starts[line-1] + indent
	switch {
	case len(fits) == 0:
		return finding{}, false
	case len(fits) == 1:
		b := fits[0]
		if b.name != "" && col > b.col && b.last.Kind == yaml.ScalarNode && b.last.Style == 0 && b.last.Line == line-1 {
			return finding{start, fmt.Sprintf("bad indentation: this line starts at column %d, deeper than %q above it (column %d), so YAML reads it as more of the value of %q; keys of one mapping must start at the same column", col, b.name, b.col, b.name)}, true
		}
		if b.name == "" {
			return finding{start, fmt.Sprintf(`bad indentation: this line starts at column %d, but the "-" items above it start at column %d; items of one list must start at the same column`, col, b.col)}, true
		}
		return finding{start, fmt.Sprintf("bad indentation: this line starts at column %d, but %q above it starts at column %d; keys of one mapping must start at the same column", col, b.name, b.col)}, true
	default:
		where := make([]string, len(fits))
		for i, b := range fits {
			where[i] = fmt.Sprintf("%q at column %d", b.name, b.col)
			if b.name == "" {
				where[i] = fmt.Sprintf(`the "-" items at column %d`, b.col)
			}
		}
		return finding{start, fmt.Sprintf("bad indentation: this line starts at column %d, which lines up with nothing above it: %s", col, strings.Join(where, ", "))}, true
	}
}

// openBlock is a block mapping or list still open at the end of a prefix of the file.
type openBlock struct {
	col  int        // where its keys or "-" start
	name string     // a mapping's last key; "" for a list
	last *yaml.Node // its last value or item
}

// openBlocks returns the block collections open at the end of doc, outermost first: the
// places where a next line may start.
func openBlocks(doc *yaml.Node) []openBlock {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	var blocks []openBlock
	for len(n.Content) > 0 && n.Style&yaml.FlowStyle == 0 {
		last := n.Content[len(n.Content)-1]
		switch n.Kind {
		case yaml.MappingNode:
			blocks = append(blocks, openBlock{col: n.Column, name: n.Content[len(n.Content)-2].Value, last: last})
		case yaml.SequenceNode:
			blocks = append(blocks, openBlock{col: n.Column, last: last})
		default:
			return blocks
		}
		n = last
	}
	return blocks
}

// isEmptyValue reports whether n is a value left empty ("key:" with nothing after it).
func isEmptyValue(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == ""
}

// reindent returns a copy of the file with line moved from column from to column to, and
// with it, when withNested, the lines after it that are indented deeper; and the last line
// moved.
func (s *syntaxSearch) reindent(line, from, to int, withNested bool) ([]byte, int) {
	last := line
	for withNested && last < len(s.lines) {
		next := s.lines[last]
		if strings.TrimSpace(next) != "" && indentWidth(next) < from {
			break
		}
		last++
	}
	var b bytes.Buffer
	b.Write(s.data[:s.starts[line-1]])
	for l := line; l <= last; l++ {
		text := s.lines[l-1]
		switch {
		case strings.TrimSpace(text) == "":
		case to > from:
			text = strings.Repeat(" ", to-from) + text
		default:
			text = text[from-to:]
		}
		b.WriteString(text)
		if l < len(s.lines) {
			b.WriteByte('\n')
		}
	}
	if last < len(s.lines) {
		b.Write(s.data[s.starts[last]:])
	}
	return b.Bytes(), last
}

// plainValueNeedsQuotes explains a plain value that YAML cannot take unquoted: one holding
// ": " (message: CPU load: high) or starting with a reserved character (@, `).
func (s *syntaxSearch) plainValueNeedsQuotes(off, _ int) (finding, bool) {
	c := s.data[off]
	colon := s.msg == "mapping values are not allowed in this context" && c == ':'
	reserved := s.msg == "found character that cannot start any token" && (c == '@' || c == '`')
	if !colon && !reserved {
		return finding{}, false
	}
	line := s.lineOf(off)
	text, start := s.lines[line-1], s.starts[line-1]
	key, v := blockValue(text)
	if v < 0 || start+v > off || strings.ContainsRune(`'"{[|>&*!`, rune(text[v])) || !plainKeyRE.MatchString(key) {
		return finding{}, false
	}
	end := valueEnd(text, v)
	quoted := quoteYAML(text[v:end])
	if !s.parsesPast(s.replace(start+v, start+end, quoted), line) {
		return finding{}, false
	}
	whose := fmt.Sprintf("the value of %q", key)
	if reserved {
		return finding{off, fmt.Sprintf(`%s starts with "%c", which YAML reserves; quote the value%s`, whose, c, example(quoted))}, true
	}
	if off+1 == start+end {
		return finding{off, fmt.Sprintf("%s ends with \":\", which YAML reads as the start of another key; quote the value%s", whose, example(quoted))}, true
	}
	return finding{off, fmt.Sprintf("%s holds \": \", which YAML reads as the start of another key; quote the value%s", whose, example(quoted))}, true
}

// plainKeyRE matches the keys a pipeline file uses; an explanation that names a key is
// only given when the key is one of those, not text that YAML happened to read as a key.
var plainKeyRE = regexp.MustCompile(`^[A-Za-z_][\w.-]*$`)

// unknownEscape explains a backslash in a double-quoted string that starts no YAML escape,
// typically a regular expression (\d, \.).
func (s *syntaxSearch) unknownEscape(off, _ int) (finding, bool) {
	if s.msg != "found unknown escape character" || s.data[off] != '\\' || off+1 >= len(s.data) {
		return finding{}, false
	}
	r, _ := utf8.DecodeRune(s.data[off+1:])
	if r == '\n' || r == '\r' || r == utf8.RuneError {
		return finding{}, false
	}
	return finding{off, fmt.Sprintf(`"\%c" is not an escape YAML knows in a double-quoted string; write "\\%c" for a backslash, or use single quotes, which keep backslashes as they are`, r, r)}, true
}

// tabIndentation explains a tab where YAML wants spaces.
func (s *syntaxSearch) tabIndentation(off, _ int) (finding, bool) {
	if s.data[off] != '\t' {
		return finding{}, false
	}
	line := s.lineOf(off)
	if strings.TrimLeft(string(s.data[s.starts[line-1]:off]), " \t") == "" {
		return finding{off, "a tab character indents this line; YAML indents with spaces only"}, true
	}
	if strings.Contains(s.msg, "tab character") {
		return finding{off, s.msg + "; use spaces instead"}, true
	}
	return finding{}, false
}

// blockValue returns the key of a block "key: value" line (after any "- ") and the offset
// where its value starts; -1 when the line has no value on it.
func blockValue(text string) (key string, value int) {
	i := indentWidth(text)
	for strings.HasPrefix(text[i:], "- ") {
		i += 2 + indentWidth(text[i+2:])
	}
	rest := text[i:]
	if rest == "" || strings.ContainsRune(`'"{[?#`, rune(rest[0])) {
		return "", -1
	}
	colon := strings.Index(rest, ": ")
	if colon < 0 || strings.Contains(rest[:colon], " #") {
		return "", -1
	}
	v := i + colon + 1
	v += indentWidth(text[v:])
	if v >= len(strings.TrimRight(text, " \t\r")) {
		return "", -1
	}
	return rest[:colon], v
}

// valueEnd returns where a plain value starting at or before from ends: before a comment or
// trailing blanks.
func valueEnd(text string, from int) int {
	end := len(text)
	if i := strings.Index(text[from:], " #"); i >= 0 {
		end = from + i
	}
	return len(strings.TrimRight(text[:end], " \t\r"))
}

// quoteYAML quotes s so that YAML reads it as the very text s: single quotes (doubled
// inside), or double quotes when s starts with a single quote.
func quoteYAML(s string) string {
	if strings.HasPrefix(s, "'") {
		return strconv.Quote(s)
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// example shows the quoted value when it is short enough to read in one message.
func example(quoted string) string {
	if utf8.RuneCountInString(quoted) > 60 {
		return ""
	}
	return ": " + quoted
}

// indentWidth is the number of spaces and tabs text starts with.
func indentWidth(text string) int {
	return len(text) - len(strings.TrimLeft(text, " \t"))
}
