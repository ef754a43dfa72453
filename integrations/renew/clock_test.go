package renew

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a frozen clock whose timers fire when the test moves it.
// Every After call registers a timer and wakes waitTimer, so a test knows
// when the Renewer has finished a round and gone back to sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	added  chan struct{}
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, added: make(chan struct{}, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	}
	c.added <- struct{}{}
	return ch
}

// waitTimer blocks until the Renewer has asked for a timer (it is asleep)
// and returns when that timer fires.
func (c *fakeClock) waitTimer(t *testing.T) time.Time {
	t.Helper()
	select {
	case <-c.added:
	case <-time.After(10 * time.Second):
		t.Fatal("the renewer did not go to sleep within 10 s")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return c.now
	}
	return c.timers[len(c.timers)-1].at
}

// set moves the clock to at and fires the timers due by then.
func (c *fakeClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if !tm.at.After(at) {
			tm.ch <- at
		} else {
			kept = append(kept, tm)
		}
	}
	c.timers = kept
}
