package etcd

import (
	"context"
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/turnout/turnout/internal/deploy"
)

// TestUnavailable: every way etcd and gRPC say "no answer in time" or "no
// quorum" makes a store error that wraps deploy.ErrUnavailable (the admin
// API's 503), including a member's own timeout reported as an unknown code
// before this request's deadline — which an apply without quorum met as a
// 500 in the fleet test.
func TestUnavailable(t *testing.T) {
	s := &Store{endpoints: "http://127.0.0.1:2379", hint: "?"}
	live := context.Background() // a request whose own deadline has not passed
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unknown, "context deadline exceeded"), true},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{rpctypes.ErrGRPCNoLeader, true},
		{rpctypes.ErrGRPCTimeout, true},
		{context.DeadlineExceeded, true},
		{status.Error(codes.Unknown, "something else"), false},
		{rpctypes.ErrGRPCKeyNotFound, false},
		{errors.New("permission denied"), false},
	} {
		err := s.fail(live, "read", tc.err)
		if got := errors.Is(err, deploy.ErrUnavailable); got != tc.want {
			t.Errorf("%v: unavailable %v, want %v (%v)", tc.err, got, tc.want, err)
		}
	}
}
