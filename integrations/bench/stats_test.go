package bench

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		in                      []time.Duration
		min, med, p90, p99, max time.Duration
	}{
		{ms(5), 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), time.Millisecond, 2500 * time.Microsecond, 4 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), time.Millisecond, 5500 * time.Microsecond, 9 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
	} {
		s := Summarize(c.in)
		if s.Min != c.min || s.Median != c.med || s.P90 != c.p90 || s.P99 != c.p99 || s.Max != c.max || s.N != len(c.in) {
			t.Errorf("Summarize(%v) = %+v", c.in, s)
		}
	}
	if s := Summarize(nil); s.N != 0 || s.Median != 0 {
		t.Errorf("empty: %+v", s)
	}
	// p99 of 100 values is the 99th, of 1000 the 990th.
	var hundred, thousand []time.Duration
	for i := 1; i <= 1000; i++ {
		if i <= 100 {
			hundred = append(hundred, time.Duration(i))
		}
		thousand = append(thousand, time.Duration(i))
	}
	if p := Summarize(hundred).P99; p != 99 {
		t.Errorf("p99 of 1..100 = %d", p)
	}
	if p := Summarize(thousand).P99; p != 990 {
		t.Errorf("p99 of 1..1000 = %d", p)
	}
}
