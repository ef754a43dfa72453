// Package kubecred implements the client side of Kubernetes' exec
// credential plugin protocol (client.authentication.k8s.io, "client-go
// credential plugins"), for tokenhelper.
//
// kubectl runs the command named in the kubeconfig's users[].user.exec
// section and passes an ExecCredential object in the environment variable
// KUBERNETES_EXEC_INFO: its apiVersion (v1 or v1beta1), spec.interactive,
// and — when the kubeconfig sets provideClusterInfo: true — spec.cluster
// with the API server's URL. The plugin answers on stdout with an
// ExecCredential of the same apiVersion whose status carries the bearer
// token and its expirationTimestamp (RFC 3339); kubectl reuses the token
// until then and runs the plugin again afterwards (or after a 401).
//
// Run reads the exec info string and writes the answer to an io.Writer;
// the token comes from a Source (the CLI routes the cluster's server URL
// to a profile). Nothing here touches the process.
package kubecred

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// EnvExecInfo is the environment variable kubectl passes the request in.
const EnvExecInfo = "KUBERNETES_EXEC_INFO"

// The API versions kubectl speaks to exec plugins today.
const (
	APIVersionV1      = "client.authentication.k8s.io/v1"
	APIVersionV1beta1 = "client.authentication.k8s.io/v1beta1"
)

// Kind is the object kind of requests and answers.
const Kind = "ExecCredential"

// MaxExecInfo bounds the exec info read (it may carry the cluster's CA
// bundle and plugin config).
const MaxExecInfo = 1 << 20

// ExecInfo is what kubectl tells the plugin.
type ExecInfo struct {
	// APIVersion of the request and thus of the answer.
	APIVersion string
	// Server is the cluster's API server URL ("" unless the kubeconfig
	// sets provideClusterInfo: true).
	Server string
	// Interactive reports whether kubectl lets the plugin use stdin.
	Interactive bool
}

type execCredential struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Spec       spec    `json:"spec"`
	Status     *status `json:"status,omitempty"`
}

type spec struct {
	Cluster     *cluster `json:"cluster,omitempty"`
	Interactive bool     `json:"interactive"`
}

type cluster struct {
	Server string `json:"server"`
}

type status struct {
	ExpirationTimestamp string `json:"expirationTimestamp,omitempty"`
	Token               string `json:"token"`
}

func inputError(msg string) *helper.Error {
	return &helper.Error{Kind: helper.KindUsage, Msg: EnvExecInfo + ": " + msg,
		Fix: "set apiVersion: " + APIVersionV1 + " in the kubeconfig's exec section"}
}

// ParseExecInfo parses the value of KUBERNETES_EXEC_INFO. An empty value
// (an old kubectl, or a person running the plugin by hand) means v1 with
// no cluster information. Errors are KindUsage and never repeat the input.
func ParseExecInfo(raw string) (ExecInfo, error) {
	if strings.TrimSpace(raw) == "" {
		return ExecInfo{APIVersion: APIVersionV1}, nil
	}
	if len(raw) > MaxExecInfo {
		return ExecInfo{}, inputError("larger than 1 MiB")
	}
	var ec execCredential
	if err := json.Unmarshal([]byte(raw), &ec); err != nil {
		return ExecInfo{}, inputError("not an ExecCredential JSON object")
	}
	if ec.Kind != "" && ec.Kind != Kind {
		return ExecInfo{}, inputError("kind is not " + Kind)
	}
	switch ec.APIVersion {
	case APIVersionV1, APIVersionV1beta1:
	case "":
		return ExecInfo{}, inputError("no apiVersion")
	default:
		return ExecInfo{}, inputError("unsupported apiVersion (tokenhelper speaks " + APIVersionV1 + " and " + APIVersionV1beta1 + ")")
	}
	info := ExecInfo{APIVersion: ec.APIVersion, Interactive: ec.Spec.Interactive}
	if ec.Spec.Cluster != nil {
		info.Server = ec.Spec.Cluster.Server
	}
	return info, nil
}

// Source finds the token for a cluster.
type Source interface {
	// Token returns the token for the cluster whose API server is at
	// server ("" when kubectl gave no cluster information).
	Token(ctx context.Context, server string) (*helper.Token, error)
}

// Run answers the request in execInfo (the value of KUBERNETES_EXEC_INFO)
// with a token from src, written to out as one JSON line. On error
// nothing is written.
func Run(ctx context.Context, src Source, execInfo string, out io.Writer) error {
	info, err := ParseExecInfo(execInfo)
	if err != nil {
		return err
	}
	tok, err := src.Token(ctx, info.Server)
	if err != nil {
		return err
	}
	if tok == nil || tok.AccessToken == "" {
		return helper.Errorf(helper.KindNoToken, "no token for the cluster")
	}
	return Write(out, info, tok)
}

// Write writes the ExecCredential answer for info with tok: apiVersion as
// asked, status.token and, when the expiry is known,
// status.expirationTimestamp in RFC 3339 (UTC, whole seconds).
func Write(out io.Writer, info ExecInfo, tok *helper.Token) error {
	ec := execCredential{
		APIVersion: info.APIVersion,
		Kind:       Kind,
		Spec:       spec{Interactive: info.Interactive},
		Status:     &status{Token: tok.AccessToken},
	}
	if !tok.Expiry.IsZero() {
		ec.Status.ExpirationTimestamp = tok.Expiry.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	b, err := json.Marshal(ec)
	if err != nil {
		return helper.Wrap(helper.KindInternal, err, "cannot encode the ExecCredential")
	}
	_, err = out.Write(append(b, '\n'))
	return err
}
