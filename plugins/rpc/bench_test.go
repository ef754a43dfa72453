package rpc_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc"
)

// BenchmarkLaunchCall is one plugin use as tokenhelper-pluginhost makes
// it: start, handshake, Configure, Token, shutdown (docs/benchmarks.md).
func BenchmarkLaunchCall(b *testing.B) {
	for b.Loop() {
		c, err := launch(b, "ok", 0)
		if err != nil {
			b.Fatal(err)
		}
		call(b, c.Backend)
		c.Close()
	}
}

// BenchmarkLaunchCallAutoMTLS is the same with go-plugin's AutoMTLS,
// which tokenhelper leaves off (docs/plugins.md says why).
func BenchmarkLaunchCallAutoMTLS(b *testing.B) {
	for b.Loop() {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), envMode+"=ok")
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig: rpc.Handshake, Plugins: rpc.PluginSet(nil), Cmd: cmd,
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, AutoMTLS: true,
			Logger: hclog.NewNullLogger(), Stderr: io.Discard,
		})
		proto, err := client.Client()
		if err != nil {
			b.Fatal(err)
		}
		raw, err := proto.Dispense(rpc.PluginName)
		if err != nil {
			b.Fatal(err)
		}
		call(b, raw.(*rpc.Client))
		client.Kill()
	}
}

func call(b *testing.B, c *rpc.Client) {
	ctx := context.Background()
	if _, err := c.Configure(ctx, rpc.Config{Profile: &config.Profile{Name: "p"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Token(ctx, helper.Request{Profile: "p"}); err != nil {
		b.Fatal(err)
	}
}
