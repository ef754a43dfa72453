package testbed

import (
	"sync"
	"time"
)

// Clock is the test bed's notion of time. Token iat/nbf/exp, expires_in,
// refresh-token and device-code expiry, and the storage's exp/nbf checks
// all use it, so a test advances time instead of sleeping.
//
// A Clock is either ticking (real time plus an offset that Advance grows;
// see [RealClock]) or frozen (see [NewClock]). It is safe for concurrent use
// and implements helper.Clock.
type Clock struct {
	mu     sync.Mutex
	frozen bool
	at     time.Time     // frozen: the current time
	offset time.Duration // ticking: added to time.Now
}

// RealClock returns a ticking clock: it follows the machine's clock, shifted
// by whatever Advance and Set add.
func RealClock() *Clock { return &Clock{} }

// NewClock returns a frozen clock that reads start until Advance or Set
// moves it.
func NewClock(start time.Time) *Clock { return &Clock{frozen: true, at: start} }

// Now returns the current time of the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		return c.at
	}
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d (backwards when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.at = c.at.Add(d)
		return
	}
	c.offset += d
}

// Set moves the clock to t. A ticking clock keeps ticking from t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen {
		c.at = t
		return
	}
	c.offset = time.Until(t)
}
