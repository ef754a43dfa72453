package testbed_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// TestStorageWithProviderTokens puts the provider and the storage
// together: a device-flow token of alice writes in her home and reads
// anywhere, a token expires with the test bed's clock, and the storage's
// endpoint can be faulted like the provider's.
func TestStorageWithProviderTokens(t *testing.T) {
	t.Parallel()
	for _, https := range []bool{false, true} {
		tb := testbed.Start(t, fast(testbed.Options{HTTPS: https, Storage: true, Lifetimes: testbed.Lifetimes{Access: 5 * time.Minute}}))
		if !strings.HasSuffix(tb.StorageURL, "/storage/") || tb.StorageOrigin()+"/storage/" != tb.StorageURL {
			t.Fatalf("StorageURL %q, origin %q", tb.StorageURL, tb.StorageOrigin())
		}
		conf := oauthConfig(tb, testbed.ClientSpec{ID: testbed.DemoClientID}, "openid", "storage.read:/", "storage.modify:/home/alice")
		tok := loginAlice(t, tb, conf, oauth2Audience(tb.StorageOrigin()))
		if _, c := claims(t, tb, tok.AccessToken); c["aud"] != tb.StorageOrigin() {
			t.Fatalf("aud %v, want %s", c["aud"], tb.StorageOrigin())
		}
		bearer := http.Header{"Authorization": {"Bearer " + tok.AccessToken}}
		file := tb.StorageURL + "home/alice/hello.txt"
		if code, body := fetch(t, tb, "PUT", file, bearer, strings.NewReader("hello\n")); code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %s", file, code, body)
		}
		if code, body := fetch(t, tb, "GET", file, bearer, nil); code != 200 || body != "hello\n" {
			t.Errorf("GET: %d %q", code, body)
		}
		if code, _ := fetch(t, tb, "PUT", tb.StorageURL+"home/bob/x", bearer, strings.NewReader("x")); code != http.StatusForbidden {
			t.Errorf("PUT outside the scope: %d, want 403", code)
		}
		if code, _ := fetch(t, tb, "GET", file, nil, nil); code != http.StatusUnauthorized {
			t.Errorf("GET without a token: %d, want 401", code)
		}
		minted, err := tb.IssueToken("alice", []string{"storage.read:/home"}, []string{tb.StorageOrigin()}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := fetch(t, tb, "GET", file, http.Header{"Authorization": {"Bearer " + minted}}, nil); code != 200 {
			t.Errorf("GET with a minted token: %d", code)
		}

		if err := tb.Inject(testbed.EndpointStorage, testbed.Status(503).Once()); err != nil {
			t.Fatal(err)
		}
		if code, _ := fetch(t, tb, "GET", file, bearer, nil); code != 503 {
			t.Errorf("storage fault: %d", code)
		}
		if c := tb.Counters(); c.Endpoint(testbed.EndpointStorage) != 6 {
			t.Errorf("storage requests counted: %d, want 6", c.Endpoint(testbed.EndpointStorage))
		}

		tb.Clock.Advance(5*time.Minute + time.Second)
		if code, _ := fetch(t, tb, "GET", file, bearer, nil); code != http.StatusUnauthorized {
			t.Errorf("GET with an expired token: %d, want 401", code)
		}
	}
}
