package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Stats summarize a sample of durations.
type Stats struct {
	N                 int
	Min, Median, Mean time.Duration
	P90, P99, Max     time.Duration
	MaxRSSKiB         int64  `json:",omitempty"` // peak over the sample
	Failures          int    `json:",omitempty"`
	FirstFailure      string `json:",omitempty"`
}

// Summarize computes Stats; percentiles use the nearest-rank method (the
// p-th percentile is the smallest value with at least p % of the sample at
// or below it), so the p99 of 10 values is their maximum.
func Summarize(d []time.Duration) Stats {
	s := Stats{N: len(d)}
	if len(d) == 0 {
		return s
	}
	x := slices.Clone(d)
	slices.Sort(x)
	var sum time.Duration
	for _, v := range x {
		sum += v
	}
	s.Min, s.Max = x[0], x[len(x)-1]
	s.Mean = sum / time.Duration(len(x))
	s.Median = median(x)
	s.P90 = Percentile(x, 90)
	s.P99 = Percentile(x, 99)
	return s
}

// median of a sorted sample: the middle value, or the mean of the two
// middle values.
func median(x []time.Duration) time.Duration {
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// Percentile returns the nearest-rank p-th percentile of a sorted sample.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// ms formats a duration in milliseconds with 2 decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// ratio formats a/b ("1.84×").
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// mib formats KiB as MiB.
func mib(kib int64) string {
	if kib <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}
