package kubecred

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

type fakeSource struct {
	tokens map[string]*helper.Token
	asked  []string
}

func (f *fakeSource) Token(ctx context.Context, server string) (*helper.Token, error) {
	f.asked = append(f.asked, server)
	t, ok := f.tokens[server]
	if !ok {
		return nil, helper.Errorf(helper.KindNoProfile, "no route serves %s", server)
	}
	return t, nil
}

func newFake() *fakeSource {
	exp := time.Date(2026, 11, 5, 12, 0, 0, 500, time.FixedZone("CET", 3600))
	return &fakeSource{tokens: map[string]*helper.Token{
		"":                             {AccessToken: "eyJ.default.sig", Expiry: exp},
		"https://k8s.example.org:6443": {AccessToken: "eyJ.k8s.sig"},
	}}
}

// Transcripts: literal KUBERNETES_EXEC_INFO and stdout.
func TestRunTranscripts(t *testing.T) {
	tests := []struct {
		name, info, stdout, server string
	}{
		{
			name:   "no exec info: v1",
			info:   "",
			stdout: `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false},"status":{"expirationTimestamp":"2026-11-05T11:00:00Z","token":"eyJ.default.sig"}}` + "\n",
		},
		{
			name:   "v1 without cluster info",
			info:   `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":true}}`,
			stdout: `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":true},"status":{"expirationTimestamp":"2026-11-05T11:00:00Z","token":"eyJ.default.sig"}}` + "\n",
		},
		{
			name:   "v1beta1 with cluster info: routed by server, expiry unknown",
			info:   `{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"cluster":{"server":"https://k8s.example.org:6443","certificate-authority-data":"LS0t","config":null},"interactive":false}}`,
			stdout: `{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false},"status":{"token":"eyJ.k8s.sig"}}` + "\n",
			server: "https://k8s.example.org:6443",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFake()
			var out bytes.Buffer
			if err := Run(context.Background(), src, tt.info, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out.String(), tt.stdout)
			}
			if len(src.asked) != 1 || src.asked[0] != tt.server {
				t.Errorf("asked for %q, want %q", src.asked, tt.server)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name, info string
		kind       helper.Kind
		msg        string
	}{
		{"not JSON", "{", helper.KindUsage, "not an ExecCredential"},
		{"v1alpha1", `{"apiVersion":"client.authentication.k8s.io/v1alpha1","kind":"ExecCredential"}`, helper.KindUsage, "unsupported apiVersion"},
		{"no apiVersion", `{"kind":"ExecCredential"}`, helper.KindUsage, "no apiVersion"},
		{"wrong kind", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod"}`, helper.KindUsage, "kind is not"},
		{"too large", `{"apiVersion":"client.authentication.k8s.io/v1","x":"` + strings.Repeat("a", MaxExecInfo) + `"}`, helper.KindUsage, "larger than 1 MiB"},
		{"unrouted cluster", `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":{"server":"https://other:6443"}}}`, helper.KindNoProfile, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), newFake(), tt.info, &out)
			if helper.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want kind %v with %q", err, tt.kind, tt.msg)
			}
			if out.Len() != 0 {
				t.Errorf("wrote %q", out.String())
			}
		})
	}
}

func TestEmptyTokenIsAnError(t *testing.T) {
	src := &fakeSource{tokens: map[string]*helper.Token{"": {}}}
	var out bytes.Buffer
	if err := Run(context.Background(), src, "", &out); !helper.IsKind(err, helper.KindNoToken) || out.Len() != 0 {
		t.Fatalf("err = %v, out %q", err, out.String())
	}
}
