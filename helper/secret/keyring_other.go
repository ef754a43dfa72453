//go:build !linux

package secret

import (
	"fmt"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// KeyringCache is the kernel-keyring unlock cache. Outside Linux there is
// no such keyring: every method returns an error wrapping
// ErrCacheUnavailable.
type KeyringCache struct{}

// NewKeyringCache returns the (unavailable) keyring cache.
func NewKeyringCache(clock helper.Clock) *KeyringCache { return &KeyringCache{} }

var errNoKeyring = fmt.Errorf("%w: the kernel keyring exists on Linux only", ErrCacheUnavailable)

// Err returns why the cache is unavailable.
func (c *KeyringCache) Err() error { return errNoKeyring }

// Get implements Cache.
func (c *KeyringCache) Get(id string) ([]byte, time.Time, error) {
	return nil, time.Time{}, errNoKeyring
}

// Put implements Cache.
func (c *KeyringCache) Put(id string, secret []byte, ttl time.Duration) error { return errNoKeyring }

// Delete implements Cache.
func (c *KeyringCache) Delete(id string) error { return errNoKeyring }
