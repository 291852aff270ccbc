package config

import (
	"fmt"
	"slices"
	"strings"
)

// A topic cycle takes a pipeline down: a stream that writes (directly, through its dead
// letters, or through a side output such as a window's late: topic) a topic that it reads
// itself, or that leads back to it through other streams, processes its own records again
// without end. The seed project's own loop turned one reading into 434,063 records in 6 s.

// topicWrite is one topic a stream or sink writes, and where the file says so.
type topicWrite struct {
	topic string
	path  string // where to change it: streams[0].output.topic
	how   string // "writes", "sends the records it cannot process to", ...
	// records says which records go there when not all do: "a record that fails",
	// "a late record"; "" for an output.
	records string
}

// consumer is a stream or sink: it reads one topic and writes some.
type consumer struct {
	what   string // stream "rules", the sink at sinks[1]
	reads  string
	writes []topicWrite
}

// consumers lists the streams, then the sinks, with the declared topics each writes.
func (l *loader) consumers(p *Pipeline) []consumer {
	var out []consumer
	for i, s := range p.Streams {
		out = append(out, consumer{what: streamWhat(s, i), reads: s.Input.Topic, writes: l.streamWrites(p, i)})
	}
	for i, s := range p.Sinks {
		c := consumer{what: fmt.Sprintf("the sink at sinks[%d]", i), reads: s.From}
		if p.DeadLetter != "" {
			c.writes = append(c.writes, topicWrite{topic: p.DeadLetter, path: indexPath("sinks", i) + ".from",
				how: "sends the records it cannot store to the top-level dead_letter", records: "a record that fails"})
		}
		out = append(out, c)
	}
	for i := range out {
		out[i].writes = slices.DeleteFunc(out[i].writes, func(w topicWrite) bool { _, ok := p.Topics[w.topic]; return !ok })
	}
	return out
}

func streamWhat(s Stream, i int) string {
	if s.Name == "" {
		return fmt.Sprintf("the stream at streams[%d]", i)
	}
	return fmt.Sprintf("stream %q", s.Name)
}

// streamWrites lists the topics stream i writes: its output, its dead letters (its own
// dead_letter or the top-level one), and the side outputs of its processors. A topic named
// in a processor's settings (ref:"topics") is one the processor writes records to.
func (l *loader) streamWrites(p *Pipeline, i int) []topicWrite {
	s, path := p.Streams[i], indexPath("streams", i)
	var out []topicWrite
	if s.Output.Topic != "" {
		out = append(out, topicWrite{topic: s.Output.Topic, path: path + ".output.topic", how: "writes"})
	}
	switch {
	case s.Input.DeadLetter != "":
		out = append(out, topicWrite{topic: s.Input.DeadLetter, path: path + ".input.dead_letter", how: "sends the records it cannot process to", records: "a record that fails"})
	case p.DeadLetter != "":
		out = append(out, topicWrite{topic: p.DeadLetter, path: path + ".input", how: "sends the records it cannot process to the top-level dead_letter", records: "a record that fails"})
	}
	for _, r := range l.refs {
		if r.section == "topics" && strings.HasPrefix(r.path, path+".processors[") {
			field := r.path[strings.LastIndex(r.path, ".")+1:]
			out = append(out, topicWrite{topic: r.name, path: r.path, how: "sends its " + field + " records to", records: "a " + field + " record"})
		}
	}
	return out
}

// checkCycles reports every stream or sink that writes the topic it reads, and every cycle
// of topics through several of them (once, at the first step of the cycle in the file).
func (l *loader) checkCycles(p *Pipeline) {
	cs := l.consumers(p)
	readers := map[string][]int{}
	for i, c := range cs {
		if c.reads != "" {
			readers[c.reads] = append(readers[c.reads], i)
		}
	}
	for _, c := range cs {
		for _, w := range c.writes {
			if w.topic == c.reads {
				l.errs.Add(l.posOf(w.path), w.path, "%s %s %s, the topic it reads: %s", c.what, w.how, w.topic, selfLoopAdvice(w))
			}
		}
	}
	for _, cycle := range topicCycles(cs, readers) {
		first := cycle[0].write
		var steps []string
		what := "every record"
		for _, e := range cycle {
			steps = append(steps, fmt.Sprintf("%s %s %s, which %s reads", cs[e.from].what, e.write.how, e.write.topic, cs[e.to].what))
			if e.write.records != "" {
				what = e.write.records
			}
		}
		l.errs.Add(l.posOf(first.path), first.path, "topic cycle: %s: %s would go round without end; make one of them write to a topic that none of them reads", strings.Join(steps, "; "), what)
	}
}

func selfLoopAdvice(w topicWrite) string {
	switch {
	case w.records == "":
		return "every record it writes would be read and written again, without end; write another topic"
	case strings.HasSuffix(w.path, ".from"):
		return "a record it cannot store would come back and fail again, without end; store this topic with a stream (output: postgres or parquet) whose input.dead_letter is another topic"
	case strings.HasSuffix(w.path, ".input"):
		return "a record that fails would come back and fail again, without end; set input.dead_letter: here to another topic"
	case strings.HasSuffix(w.path, ".dead_letter"):
		return "a record that fails would come back and fail again, without end; use another dead-letter topic"
	}
	return w.records + " would come back and go round again, without end; send them to another topic"
}

// step is one edge of a cycle: consumer from writes a topic consumer to reads.
type step struct {
	from, to int
	write    topicWrite
}

// topicCycles finds the cycles through two or more consumers: for each group of consumers
// that all reach each other (a strongly connected component), the shortest cycle through
// the first of them in the file.
func topicCycles(cs []consumer, readers map[string][]int) [][]step {
	next := func(u int) []step {
		var out []step
		for _, w := range cs[u].writes {
			for _, v := range readers[w.topic] {
				if v != u {
					out = append(out, step{from: u, to: v, write: w})
				}
			}
		}
		return out
	}
	var cycles [][]step
	for _, comp := range components(len(cs), next) {
		if len(comp) < 2 {
			continue
		}
		if c := shortestCycle(slices.Min(comp), next); c != nil {
			cycles = append(cycles, c)
		}
	}
	return cycles
}

// shortestCycle is the shortest path from start back to start (breadth first, edges in
// file order), or nil.
func shortestCycle(start int, next func(int) []step) []step {
	via := map[int]step{}
	queue := []int{start}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range next(u) {
			if e.to == start {
				path := []step{e}
				for at := u; at != start; at = via[at].from {
					path = append(path, via[at])
				}
				slices.Reverse(path)
				return path
			}
			if _, seen := via[e.to]; !seen {
				via[e.to] = e
				queue = append(queue, e.to)
			}
		}
	}
	return nil
}

// components returns the strongly connected components of the graph of n nodes (Tarjan).
func components(n int, next func(int) []step) [][]int {
	index, low := make([]int, n), make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	counter := 0
	var visit func(u int)
	visit = func(u int) {
		index[u], low[u] = counter, counter
		counter++
		stack = append(stack, u)
		onStack[u] = true
		for _, e := range next(u) {
			switch {
			case index[e.to] < 0:
				visit(e.to)
				low[u] = min(low[u], low[e.to])
			case onStack[e.to]:
				low[u] = min(low[u], index[e.to])
			}
		}
		if low[u] != index[u] {
			return
		}
		var comp []int
		for {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[v] = false
			comp = append(comp, v)
			if v == u {
				break
			}
		}
		out = append(out, comp)
	}
	for u := range n {
		if index[u] < 0 {
			visit(u)
		}
	}
	return out
}
