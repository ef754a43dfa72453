package gitcred

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/helper"
)

// FuzzParse feeds arbitrary records to the parser and to a whole get and
// erase: no panic, errors are usage errors, nothing on stdout after an
// error, and an answer is always a well-formed record.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"protocol=https\nhost=git.example.org\n\n",
		"capability[]=authtype\nprotocol=https\nhost=git.example.org:8443\npath=g/r.git\nwwwauth[]=Basic realm=\"x\"\n\n",
		"url=https://u:p@git.example.org/g/r.git\n",
		"protocol=https\nhost=git.example.org\nusername=oauth2\npassword=eyJ.tok.sig\n\n",
		"\x00",
		"=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Parse(bytes.NewReader(in))
		if err != nil {
			if !helper.IsKind(err, helper.KindUsage) {
				t.Fatalf("Parse error of kind %v: %v", helper.KindOf(err), err)
			}
			if c != nil {
				t.Fatalf("Parse returned a record and an error")
			}
		} else {
			for _, v := range []string{c.Protocol, c.Host, c.Path, c.Username, c.Password, c.AuthType, c.Credential} {
				if strings.ContainsAny(v, "\n\x00") {
					t.Fatalf("parsed value with a newline or NUL: %q", v)
				}
			}
			if _, _, err := c.Target(); err != nil && !helper.IsKind(err, helper.KindUsage) {
				t.Fatalf("Target error of kind %v", helper.KindOf(err))
			}
		}
		src := newFake()
		for _, action := range []string{"get", "erase"} {
			var out bytes.Buffer
			err := (&Handler{Source: src, Notices: &bytes.Buffer{}}).Handle(context.Background(), action, bytes.NewReader(in), &out)
			if err != nil && out.Len() != 0 {
				t.Fatalf("%s: error %v with output %q", action, err, out.String())
			}
			if out.Len() == 0 {
				continue
			}
			if action != "get" {
				t.Fatalf("%s wrote %q", action, out.String())
			}
			rec, err := Parse(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatalf("answer %q does not parse: %v", out.String(), err)
			}
			if rec.Secret() == "" {
				t.Fatalf("answer without a secret: %q", out.String())
			}
		}
	})
}
