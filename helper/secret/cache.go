package secret

import (
	"errors"
	"sync"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// DefaultUnlockFor is how long an unlock is remembered when the profile's
// unlock_for is 0.
const DefaultUnlockFor = 12 * time.Hour

// Cache remembers unlocked identities for a bounded time. The kernel
// keyring ([KeyringCache]) is the real one; [MemoryCache] is for tests.
// Implementations must be safe for concurrent use.
type Cache interface {
	// Get returns the secret stored under id and when it expires. A
	// missing or expired entry is ErrNotCached; a cache that cannot work
	// here returns an error wrapping ErrCacheUnavailable.
	Get(id string) (secret []byte, expires time.Time, err error)
	// Put stores secret under id for ttl (> 0), replacing any entry.
	Put(id string, secret []byte, ttl time.Duration) error
	// Delete removes the entry; a missing entry is not an error.
	Delete(id string) error
}

// Errors a Cache returns.
var (
	ErrNotCached        = errors.New("not in the unlock cache")
	ErrCacheUnavailable = errors.New("unlock cache unavailable")
)

// MemoryCache is an in-process Cache with an injectable clock, for tests
// of code built on this package.
type MemoryCache struct {
	clock helper.Clock
	mu    sync.Mutex
	m     map[string]memEntry
}

type memEntry struct {
	secret  []byte
	expires time.Time
}

// NewMemoryCache returns an empty MemoryCache; clock nil means the system
// clock.
func NewMemoryCache(clock helper.Clock) *MemoryCache {
	if clock == nil {
		clock = helper.SystemClock{}
	}
	return &MemoryCache{clock: clock, m: map[string]memEntry{}}
}

// Get implements Cache.
func (c *MemoryCache) Get(id string) ([]byte, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return nil, time.Time{}, ErrNotCached
	}
	if !c.clock.Now().Before(e.expires) {
		delete(c.m, id)
		return nil, time.Time{}, ErrNotCached
	}
	return append([]byte(nil), e.secret...), e.expires, nil
}

// Put implements Cache.
func (c *MemoryCache) Put(id string, secret []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("unlock cache: ttl must be positive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id] = memEntry{secret: append([]byte(nil), secret...), expires: c.clock.Now().Add(ttl)}
	return nil
}

// Delete implements Cache.
func (c *MemoryCache) Delete(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
	return nil
}

// Len returns the number of live entries.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	now := c.clock.Now()
	for _, e := range c.m {
		if now.Before(e.expires) {
			n++
		}
	}
	return n
}
