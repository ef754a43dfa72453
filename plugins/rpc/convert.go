package rpc

import (
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/pluginpb"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// The conversions between tokenhelper's types and the protocol's. Every
// field of config.Profile crosses (a test checks that a new field is not
// forgotten); text coming from the other side is cleaned (remote.Clean)
// before it can reach a message.

func dur(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

func fromDur(d *durationpb.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.AsDuration()
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func fromStamp(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// ProfileToPB converts a profile for the wire.
func ProfileToPB(p *config.Profile) *pluginpb.Profile {
	if p == nil {
		return nil
	}
	return &pluginpb.Profile{
		Name: p.Name, Backend: p.Backend, Isolate: p.Isolate,
		Issuer: p.Issuer, Account: p.Account, ClientId: p.ClientID, CaFile: p.CAFile,
		Scopes: p.Scopes, Audiences: p.Audiences, MinValid: dur(p.MinValid.D()),
		Flow: p.Flow, Exchange: p.Exchange,
		PassphraseEnv: p.PassphraseEnv, PassphraseFile: p.PassphraseFile, PassphraseCmd: p.PassphraseCmd,
		Plaintext: p.Plaintext, UnlockFor: dur(p.UnlockFor.D()),
		TokenFile: p.TokenFile, Command: p.Command, Timeout: dur(p.Timeout.D()),
		Username: p.Username, Options: maps.Clone(p.Options),
	}
}

// ProfileFromPB converts a profile from the wire.
func ProfileFromPB(p *pluginpb.Profile) *config.Profile {
	if p == nil {
		return nil
	}
	return &config.Profile{
		Name: p.GetName(), Backend: p.GetBackend(), Isolate: p.GetIsolate(),
		Issuer: p.GetIssuer(), Account: p.GetAccount(), ClientID: p.GetClientId(), CAFile: p.GetCaFile(),
		Scopes: p.GetScopes(), Audiences: p.GetAudiences(), MinValid: config.Duration(fromDur(p.GetMinValid())),
		Flow: p.GetFlow(), Exchange: p.GetExchange(),
		PassphraseEnv: p.GetPassphraseEnv(), PassphraseFile: p.GetPassphraseFile(), PassphraseCmd: p.GetPassphraseCmd(),
		Plaintext: p.GetPlaintext(), UnlockFor: config.Duration(fromDur(p.GetUnlockFor())),
		TokenFile: p.GetTokenFile(), Command: p.GetCommand(), Timeout: config.Duration(fromDur(p.GetTimeout())),
		Username: p.GetUsername(), Options: maps.Clone(p.GetOptions()),
	}
}

// HostToPB converts the host description for the wire.
func HostToPB(h remote.Host) *pluginpb.Host {
	return &pluginpb.Host{
		Home: h.Dirs.Home, ConfigFile: h.Dirs.ConfigFile, CacheDir: h.Dirs.CacheDir,
		DataDir: h.Dirs.DataDir, StateDir: h.Dirs.StateDir, RuntimeDir: h.Dirs.RuntimeDir,
		PluginDirs: h.Dirs.PluginDirs, Uid: int64(h.UID), TmpDir: h.TmpDir,
		Verbose: int32(h.Verbose), Version: h.Version,
	}
}

// HostFromPB converts the host description from the wire.
func HostFromPB(h *pluginpb.Host) remote.Host {
	return remote.Host{
		Dirs: config.Dirs{
			Home: h.GetHome(), ConfigFile: h.GetConfigFile(), CacheDir: h.GetCacheDir(),
			DataDir: h.GetDataDir(), StateDir: h.GetStateDir(), RuntimeDir: h.GetRuntimeDir(),
			PluginDirs: h.GetPluginDirs(),
		},
		UID: int(h.GetUid()), TmpDir: h.GetTmpDir(), Verbose: int(h.GetVerbose()), Version: h.GetVersion(),
	}
}

// RequestToPB converts a token request for the wire.
func RequestToPB(r helper.Request) *pluginpb.Request {
	return &pluginpb.Request{
		Profile: r.Profile, Scopes: r.Scopes, Audiences: r.Audiences,
		MinValid: dur(r.MinValid), Force: r.Force, Interactive: r.Interactive,
	}
}

// RequestFromPB converts a token request from the wire.
func RequestFromPB(r *pluginpb.Request) helper.Request {
	return helper.Request{
		Profile: r.GetProfile(), Scopes: r.GetScopes(), Audiences: r.GetAudiences(),
		MinValid: fromDur(r.GetMinValid()), Force: r.GetForce(), Interactive: r.GetInteractive(),
	}
}

// TokenToPB converts a token for the wire.
func TokenToPB(t *helper.Token) *pluginpb.Token {
	if t == nil {
		return nil
	}
	return &pluginpb.Token{
		AccessToken: t.AccessToken, Expiry: stamp(t.Expiry), Issuer: t.Issuer,
		Scopes: t.Scopes, Audiences: t.Audiences, Profile: t.Profile, Source: t.Source,
	}
}

// TokenFromPB converts a token from the wire; descriptive fields are
// cleaned, the access token is checked by the caller.
func TokenFromPB(t *pluginpb.Token) *helper.Token {
	if t == nil {
		return nil
	}
	return &helper.Token{
		AccessToken: t.GetAccessToken(), Expiry: fromStamp(t.GetExpiry()), Issuer: remote.Clean(t.GetIssuer()),
		Scopes: cleanAll(t.GetScopes()), Audiences: cleanAll(t.GetAudiences()),
		Profile: remote.Clean(t.GetProfile()), Source: remote.Clean(t.GetSource()),
	}
}

func cleanAll(s []string) []string {
	var out []string
	for _, v := range s {
		out = append(out, remote.Clean(v))
	}
	return out
}

// KindToPB maps a helper.Kind to its protocol code (the same number).
func KindToPB(k helper.Kind) pluginpb.ErrorKind {
	if k < helper.KindInternal || k > helper.KindNoProfile {
		return pluginpb.ErrorKind_ERROR_KIND_INTERNAL
	}
	return pluginpb.ErrorKind(k)
}

// KindFromPB maps a protocol code to a helper.Kind. Codes this version
// does not know (and UNSPECIFIED) mean the plugin is failing:
// KindUnavailable.
func KindFromPB(k pluginpb.ErrorKind) helper.Kind {
	hk := helper.Kind(k)
	if hk < helper.KindInternal || hk > helper.KindNoProfile {
		return helper.KindUnavailable
	}
	return hk
}

// ErrorToPB converts a backend error for the wire (see remote.ErrorOf).
func ErrorToPB(err error) *pluginpb.Error {
	e := remote.ErrorOf(err)
	if e == nil {
		return nil
	}
	return &pluginpb.Error{Kind: KindToPB(e.Kind), Msg: e.Msg, Fix: e.Fix, Unsupported: e.Unsupported}
}

// ErrorFromPB converts an error from the wire into a *helper.Error.
func ErrorFromPB(e *pluginpb.Error) error {
	if e == nil {
		return nil
	}
	return (&remote.Error{Kind: KindFromPB(e.GetKind()), Msg: e.GetMsg(), Fix: e.GetFix(), Unsupported: e.GetUnsupported()}).Err()
}

// StatusToPB converts a status for the wire.
func StatusToPB(s helper.Status) *pluginpb.StatusReply {
	return &pluginpb.StatusReply{Backend: s.Backend, Ok: s.OK, Lines: s.Lines, SessionExpiry: stamp(s.SessionExpiry)}
}

// StatusFromPB converts a status from the wire.
func StatusFromPB(s *pluginpb.StatusReply) helper.Status {
	return (&remote.Status{Backend: s.GetBackend(), OK: s.GetOk(), Lines: s.GetLines(), SessionExpiry: fromStamp(s.GetSessionExpiry())}).Helper()
}
