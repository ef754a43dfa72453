package testbed

import (
	"context"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opStorage adapts the test bed to op.Storage. op uses it for client
// lookup and authentication, the signing key and the JWKS. The
// authorization-code and op-side token methods are never reached: the
// test bed has no code flow and opServer issues tokens itself; they answer
// with errors so that a future op change that does reach them fails
// loudly instead of issuing tokens without the test bed's clock.
type opStorage struct{ tb *Testbed }

var (
	_ op.Storage                  = (*opStorage)(nil)
	_ op.ClientCredentialsStorage = (*opStorage)(nil)
)

var errNotInTestbed = errors.New("not supported by the test bed (device, refresh, exchange, client credentials and password grants only)")

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.tb.store.client(id)
	if !ok {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	return c, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	_, err := s.tb.store.authenticate(id, secret)
	return err
}

// ClientCredentials authenticates a confidential client for the client
// credentials grant.
func (s *opStorage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	c, err := s.tb.store.authenticate(id, secret)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithDescription("client authentication failed")
	}
	if c.spec.Public {
		return nil, oidc.ErrInvalidClient().WithDescription("a public client cannot use client credentials")
	}
	return c, nil
}

func (s *opStorage) ClientCredentialsTokenRequest(context.Context, string, []string) (op.TokenRequest, error) {
	return nil, errNotInTestbed
}

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.tb.key, nil }

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.tb.key}}, nil
}

func (s *opStorage) Health(context.Context) error { return nil }

func (s *opStorage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) AuthRequestByCode(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) SaveAuthCode(context.Context, string, string) error { return errNotInTestbed }
func (s *opStorage) DeleteAuthRequest(context.Context, string) error    { return errNotInTestbed }
func (s *opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errNotInTestbed
}
func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNotInTestbed
}
func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) TerminateSession(context.Context, string, string) error { return errNotInTestbed }
func (s *opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error {
	return oidc.ErrServerError().WithParent(errNotInTestbed)
}
func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}
func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}
func (s *opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errNotInTestbed
}
func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotInTestbed
}
func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotInTestbed
}
func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotInTestbed
}
