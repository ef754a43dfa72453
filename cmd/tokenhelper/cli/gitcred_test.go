package cli

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/cache"
)

// forgetCached drops an entry only when it holds the very token git
// reports as refused, for the very request the route makes.
func TestForgetCached(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 5, 12, 0, 0, 0, time.UTC)
	c := &cache.Cache{Dir: filepath.Join(t.TempDir(), "tokens"), Now: func() time.Time { return now }}

	// A missing cache directory is an empty cache.
	if ok, err := forgetCached(ctx, c, helper.Request{Profile: "git"}, "tokA"); ok || err != nil {
		t.Fatalf("empty cache: %v, %v", ok, err)
	}

	req := helper.Request{Profile: "git", Scopes: []string{"b", "a"}, Audiences: []string{"https://git.example.org"}}
	other := helper.Request{Profile: "git", Scopes: []string{"a", "b"}}
	for _, r := range []helper.Request{req, other} {
		if err := c.Put(ctx, r.Normalized(), &helper.Token{AccessToken: "tokA", Expiry: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		es, err := c.List()
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	if ok, err := forgetCached(ctx, c, req, "another-helpers-password"); ok || err != nil || count() != 2 {
		t.Fatalf("foreign secret: %v, %v, %d entries", ok, err, count())
	}
	if ok, err := forgetCached(ctx, c, helper.Request{Profile: "other"}, "tokA"); ok || err != nil || count() != 2 {
		t.Fatalf("other profile: %v, %v, %d entries", ok, err, count())
	}
	// Scopes in another order are the same request.
	if ok, err := forgetCached(ctx, c, helper.Request{Profile: "git", Scopes: []string{"a", "b"}, Audiences: req.Audiences}, "tokA"); !ok || err != nil {
		t.Fatalf("our token: %v, %v", ok, err)
	}
	es, _ := c.List()
	if len(es) != 1 || len(es[0].Request.Audiences) != 0 {
		t.Fatalf("left %d entries: %+v", len(es), es)
	}
	// Forgetting again finds nothing.
	if ok, err := forgetCached(ctx, c, req, "tokA"); ok || err != nil {
		t.Fatalf("second erase: %v, %v", ok, err)
	}
}
