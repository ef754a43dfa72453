package curl

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args   string // split on |
		urls   []string
		stdin  bool
		config bool
		verb   bool
		lead   int
		err    string
	}{
		{args: "https://a/x", urls: []string{"https://a/x"}},
		{args: "-sS|-o|out|https://a/x", urls: []string{"https://a/x"}},
		{args: "-sSo|out|https://a/x", urls: []string{"https://a/x"}},
		{args: "-oout|https://a/x", urls: []string{"https://a/x"}},
		{args: "-XPUT|-T|file|https://a/x", urls: []string{"https://a/x"}},
		{args: "-H|X-A: b|https://a/x|https://a/y", urls: []string{"https://a/x", "https://a/y"}},
		{args: "--url|https://a/x|https://b/y", urls: []string{"https://a/x", "https://b/y"}},
		{args: "--output|https://evil/|https://a/x", urls: []string{"https://a/x"}},
		{args: "-e|https://ref/|--write-out|https://w/|https://a/x", urls: []string{"https://a/x"}},
		{args: "--outp|x|https://a/x", err: "ambiguous"},
		{args: "--write|%{http_code}|https://a/x", urls: []string{"https://a/x"}},
		{args: "--", urls: nil},
		{args: "-s|--|-v|https://a/x", urls: []string{"-v", "https://a/x"}},
		{args: "-|https://a/x", urls: []string{"-", "https://a/x"}},
		{args: "--unknown-future-opt|https://a/x", urls: []string{"https://a/x"}},
		{args: "-Z|https://a/x", urls: []string{"https://a/x"}},
		// stdin readers
		{args: "-T|-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-T.|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "--data-binary|@-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-d@-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-F|f=@-;type=text/plain|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-F|f=<-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "--data-urlencode|name@-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-H|@-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-b|-|https://a/x", urls: []string{"https://a/x"}, stdin: true},
		{args: "-o|-|-D|-|-c|-|https://a/x", urls: []string{"https://a/x"}},
		{args: "-K|-|https://a/x", urls: []string{"https://a/x"}, stdin: true, config: true},
		{args: "--conf|my.cfg", config: true},
		// verbosity
		{args: "-v|https://a/x", urls: []string{"https://a/x"}, verb: true},
		{args: "-sv|https://a/x", urls: []string{"https://a/x"}, verb: true},
		{args: "--trace-ascii|t.txt|https://a/x", urls: []string{"https://a/x"}, verb: true},
		{args: "--verb|https://a/x", urls: []string{"https://a/x"}, verb: true},
		{args: "-v|--no-verbose|https://a/x", urls: []string{"https://a/x"}, verb: true},
		{args: "--no-verbose|https://a/x", urls: []string{"https://a/x"}},
		{args: "--no-progress-meter|https://a/x", urls: []string{"https://a/x"}},
		// -q first
		{args: "-q|-s|https://a/x", urls: []string{"https://a/x"}, lead: 1},
		{args: "--disable|https://a/x", urls: []string{"https://a/x"}, lead: 1},
		{args: "-qo|out|https://a/x", urls: []string{"https://a/x"}, lead: 2},
		{args: "-sq|https://a/x", urls: []string{"https://a/x"}, lead: 1},
		{args: "-s|-q|https://a/x", urls: []string{"https://a/x"}},
		// refused
		{args: "-:|https://a/x", err: "one curl operation"},
		{args: "https://a/x|--next|https://b/", err: "one curl operation"},
		{args: "--oauth2-bearer|tok|https://a/x", err: "adds the bearer token itself"},
		{args: "-u|me:pw|https://a/x", err: "adds the bearer token itself"},
		{args: "-ume:pw|https://a/x", err: "adds the bearer token itself"},
		{args: "-H|authorization: Bearer x|https://a/x", err: "Authorization header"},
		{args: "-H| Authorization ;|https://a/x", err: "Authorization header"},
		{args: "--header|Authorization:|https://a/x", err: "Authorization header"},
		{args: "-H|Authorizationx: y|https://a/x", urls: []string{"https://a/x"}},
		{args: "--location-trusted|https://a/x", err: "redirect"},
		{args: "--no-location-trusted|https://a/x", urls: []string{"https://a/x"}},
		{args: "-o", err: "needs an argument"},
		{args: "--output", err: "needs an argument"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			got, err := Parse(strings.Split(tc.args, "|"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !helper.IsKind(err, helper.KindUsage) {
					t.Fatalf("Parse: %v, want a usage error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.URLs, tc.urls) || got.ReadsStdin != tc.stdin || got.UserConfig != tc.config ||
				got.Verbose != tc.verb || got.Lead != tc.lead {
				t.Fatalf("Parse = %+v, want urls %q stdin %v config %v verbose %v lead %d", got, tc.urls, tc.stdin, tc.config, tc.verb, tc.lead)
			}
		})
	}
}

func TestParseErrorsHoldNoToken(t *testing.T) {
	tok := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	for _, args := range [][]string{
		{"--oauth2-bearer", tok, "https://a/"},
		{"-H", "Authorization: Bearer " + tok, "https://a/"},
		{"-u", tok, "https://a/"},
	} {
		_, err := Parse(args)
		if err == nil || strings.Contains(err.Error(), tok) {
			t.Fatalf("Parse(%q) = %v", args[0], err)
		}
	}
}

func TestConfigAndCommand(t *testing.T) {
	c, err := Config("abc.def-_~+/=")
	if err != nil || c != `header = "Authorization: Bearer abc.def-_~+/="`+"\n" {
		t.Fatalf("Config = %q, %v", c, err)
	}
	for _, bad := range []string{"", "a b", `a"b`, "a\nb", `a\b`} {
		if _, err := Config(bad); err == nil {
			t.Errorf("Config(%q) accepted", bad)
		}
	}
	args := []string{"-qs", "-o", "x", "https://a/"}
	a, err := Parse(args)
	if err != nil {
		t.Fatal(err)
	}
	if got := Command(args, a, "-"); !slices.Equal(got, []string{"-qs", "-K", "-", "-o", "x", "https://a/"}) {
		t.Fatalf("Command = %q", got)
	}
	args = []string{"-o", "x", "https://a/"}
	a, _ = Parse(args)
	if got := Command(args, a, "/dev/fd/3"); !slices.Equal(got, []string{"-K", "/dev/fd/3", "-o", "x", "https://a/"}) {
		t.Fatalf("Command = %q", got)
	}
}

// requireTool returns the path of an external tool; without it the test
// fails under CI=true and is skipped otherwise.
func requireTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true): install the Debian package %s", name, debianPackage)
		}
		t.Skipf("%s not found: install the Debian package %s to run this test", name, debianPackage)
	}
	return p
}

// TestParseAgreesWithCurl runs the real curl on command lines whose option
// values look like URLs of the same server: the paths curl requests must
// be exactly the URLs Parse found, and a config given with -K - must add
// the header to every one of them.
func TestParseAgreesWithCurl(t *testing.T) {
	curlPath := requireTool(t, "curl", "curl")
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	u := srv.URL
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-sS", "-o", "/dev/null", u + "/a"},
		{"-sSo/dev/null", u + "/a"},
		{"-s", "-o", "/dev/null", "-e", u + "/referer", "-w", u + "/writeout", u + "/a"},
		{"-s", "-o", "/dev/null", "--url", u + "/a", u + "/b", "-o", "/dev/null"},
		{"-s", "--output-d", dir, "-O", "--", u + "/a"},
		{"-qs", "-o", "/dev/null", u + "/a"},
		{"-s", "--no-progress-meter", "-H", "X-Test: " + u + "/h", "-o", "/dev/null", u + "/a"},
		{"-s", "--user-ag", u + "/agent", "-o/dev/null", "-XGET", u + "/a"},
		{"-s", "-Z", "-o", "/dev/null", "-o", "/dev/null", u + "/a", u + "/b"},
	} {
		a, err := Parse(args)
		if err != nil {
			t.Fatalf("Parse(%q): %v", args, err)
		}
		mu.Lock()
		got = nil
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, curlPath, Command(args, a, "-")...)
		cfg, _ := Config("test-token")
		cmd.Stdin = strings.NewReader(cfg)
		cmd.Dir = dir
		cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "NO_PROXY=*"}
		var out bytes.Buffer
		cmd.Stderr = &out
		err = cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("curl %q: %v\n%s", args, err, out.String())
		}
		var want []string
		for _, x := range a.URLs {
			want = append(want, strings.TrimPrefix(x, u)+" Bearer test-token")
		}
		mu.Lock()
		slices.Sort(got)
		slices.Sort(want)
		ok := slices.Equal(got, want)
		mu.Unlock()
		if !ok {
			t.Fatalf("curl %q requested %q; Parse found %q", args, got, want)
		}
	}
}

// TestRedirectDropsHeader backs what docs/curl.md says about -L: curl
// (≥ 7.58) does not send the config's Authorization header to the host a
// redirect names, and --location-trusted (refused by Parse) would.
func TestRedirectDropsHeader(t *testing.T) {
	curlPath := requireTool(t, "curl", "curl")
	var mu sync.Mutex
	got := map[string]string{}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get("Authorization")
		mu.Unlock()
	}))
	defer other.Close()
	// The same server under another name (localhost instead of 127.0.0.1).
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherURL+r.URL.Path, http.StatusFound)
	}))
	defer origin.Close()
	cfg, _ := Config("test-token")
	for _, tc := range []struct {
		extra []string
		path  string
		want  string
	}{
		{[]string{"-L"}, "/plain", ""},
		{[]string{"--location-trusted"}, "/trusted", "Bearer test-token"},
	} {
		args := append([]string{"-sS", "-o", "/dev/null"}, tc.extra...)
		args = append(args, origin.URL+tc.path)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, curlPath, append([]string{"-K", "-"}, args...)...)
		cmd.Stdin = strings.NewReader(cfg)
		cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "NO_PROXY=*"}
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("curl %q: %v\n%s", args, err, out)
		}
		mu.Lock()
		h, reached := got[tc.path]
		mu.Unlock()
		if !reached || h != tc.want {
			t.Fatalf("curl %q: the redirect target got Authorization %q (reached %v), want %q", tc.extra, h, reached, tc.want)
		}
	}
	if _, err := Parse([]string{"--location-trusted", origin.URL}); err == nil {
		t.Fatal("Parse accepts --location-trusted")
	}
}
