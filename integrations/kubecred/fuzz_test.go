package kubecred

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzParseExecInfo: no panic; errors are usage errors; an accepted
// request is answered with an ExecCredential of the same apiVersion.
func FuzzParseExecInfo(f *testing.F) {
	for _, s := range []string{
		"",
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}`,
		`{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"cluster":{"server":"https://k8s.example.org:6443"}}}`,
		`{"apiVersion":"client.authentication.k8s.io/v1alpha1"}`,
		`null`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		info, err := ParseExecInfo(raw)
		if err != nil {
			if !helper.IsKind(err, helper.KindUsage) {
				t.Fatalf("error of kind %v", helper.KindOf(err))
			}
			return
		}
		if info.APIVersion != APIVersionV1 && info.APIVersion != APIVersionV1beta1 {
			t.Fatalf("accepted apiVersion %q", info.APIVersion)
		}
		src := &fakeSource{tokens: map[string]*helper.Token{info.Server: {AccessToken: "eyJ.t.s"}}}
		var out bytes.Buffer
		if err := Run(context.Background(), src, raw, &out); err != nil {
			t.Fatalf("Run: %v", err)
		}
		var ec execCredential
		if err := json.Unmarshal(out.Bytes(), &ec); err != nil || ec.APIVersion != info.APIVersion || ec.Kind != Kind || ec.Status == nil || ec.Status.Token != "eyJ.t.s" {
			t.Fatalf("answer %q: %v", out.String(), err)
		}
	})
}
