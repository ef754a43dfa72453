package testbed_test

import (
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/tokenhelper/tokenhelper/integrations/testbed"
)

// Secrets that could not be written to $TOKENHELPER_TESTBED_SECRETS make
// Close fail: a leak scan must not trust an incomplete record.
func TestCloseReportsIncompleteSecretRecord(t *testing.T) {
	fi, err := os.Stat("/dev/full")
	if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Skip("no /dev/full to make writes fail")
	}
	t.Setenv(testbed.EnvRecordSecrets, "/dev/full")
	tb, err := testbed.New(testbed.Options{Dir: t.TempDir()}) // records the demo users' passwords
	if err != nil {
		t.Fatal(err)
	}
	err = tb.Close()
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Fatalf("Close = %v, want an error saying the record is incomplete", err)
	}
}

// A test bed that recorded every secret closes without an error.
func TestCloseAfterCompleteSecretRecord(t *testing.T) {
	t.Setenv(testbed.EnvRecordSecrets, t.TempDir()+"/secrets")
	tb, err := testbed.New(testbed.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err := os.ReadFile(os.Getenv(testbed.EnvRecordSecrets))
	if err != nil || !strings.Contains(string(b), string(testbed.SecretPassword)+"\t") {
		t.Fatalf("record %q, %v: want the demo users' passwords", b, err)
	}
}
