package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// series is one NAB data file.
type series struct {
	name     string // "<category>/<file>.csv", as the labels name it
	category string
	times    []time.Time
	values   []float64
	windows  [][2]int
}

const nabTime = "2006-01-02 15:04:05"

// loadCorpus reads a folder with NAB's layout: data/<category>/*.csv and
// labels/combined_windows.json. Every data file must have an entry in the labels.
func loadCorpus(dir string) ([]*series, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	var labels map[string][][2]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("labels/combined_windows.json: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "data", "*", "*.csv"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no data/<category>/*.csv files", dir)
	}
	slices.Sort(files)
	var out []*series
	for _, file := range files {
		category := filepath.Base(filepath.Dir(file))
		name := category + "/" + filepath.Base(file)
		wins, ok := labels[name]
		if !ok {
			return nil, fmt.Errorf("%s: no entry in labels/combined_windows.json", name)
		}
		s, err := readSeries(file)
		if err != nil {
			return nil, err
		}
		s.name, s.category = name, category
		for _, w := range wins {
			a, b, err := s.rows(w)
			if err != nil {
				return nil, fmt.Errorf("%s: window %v: %w", name, w, err)
			}
			s.windows = append(s.windows, [2]int{a, b})
		}
		slices.SortFunc(s.windows, func(x, y [2]int) int { return x[0] - y[0] })
		out = append(out, s)
	}
	return out, nil
}

// rows converts a window's timestamps to the first and last row inside it.
func (s *series) rows(w [2]string) (int, int, error) {
	start, err := parseNABTime(w[0])
	if err != nil {
		return 0, 0, err
	}
	end, err := parseNABTime(w[1])
	if err != nil {
		return 0, 0, err
	}
	a, _ := slices.BinarySearchFunc(s.times, start, func(t, x time.Time) int { return t.Compare(x) })
	b, found := slices.BinarySearchFunc(s.times, end, func(t, x time.Time) int { return t.Compare(x) })
	if !found {
		b--
	}
	if a > b || a >= len(s.times) {
		return 0, 0, errors.New("no rows inside")
	}
	return a, b, nil
}

func parseNABTime(s string) (time.Time, error) {
	s, _, _ = strings.Cut(strings.TrimSpace(s), ".")
	return time.Parse(nabTime, s)
}

// readSeries reads a timestamp,value file.
func readSeries(file string) (*series, error) {
	s := &series{}
	err := readCSV(file, []string{"timestamp", "value"}, func(fields []string) error {
		t, err := parseNABTime(fields[0])
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return fmt.Errorf("value: %w", err)
		}
		s.times, s.values = append(s.times, t), append(s.values, v)
		return nil
	})
	return s, err
}

// readScores reads the anomaly_score column of a published NAB result file.
func readScores(file string) ([]float64, error) {
	var out []float64
	err := readCSV(file, []string{"anomaly_score"}, func(fields []string) error {
		v, err := strconv.ParseFloat(fields[0], 64)
		out = append(out, v)
		return err
	})
	return out, err
}

// readCSV calls row with the named columns of every row of a CSV file with a header; errors
// say file:line.
func readCSV(file string, columns []string, row func(fields []string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	idx := make([]int, len(columns))
	for i, c := range columns {
		if idx[i] = slices.Index(header, c); idx[i] < 0 {
			return fmt.Errorf("%s: want columns %v, got %v", file, columns, header)
		}
	}
	fields := make([]string, len(columns))
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, line, err)
		}
		for i, j := range idx {
			fields[i] = rec[j]
		}
		if err := row(fields); err != nil {
			return fmt.Errorf("%s:%d: %w", file, line, err)
		}
	}
}
