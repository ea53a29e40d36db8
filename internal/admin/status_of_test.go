package admin

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/turnout/turnout/internal/deploy"
)

// TestStatusOfStoreErrors: what a fleet store answers reaches the client
// as the HTTP status that tells it what to do: 409 review and retry, 503
// try again when the store is back.
func TestStatusOfStoreErrors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{&deploy.ConflictError{Based: 6, Active: deploy.Deployment{ID: 7, Author: "alice"}}, http.StatusConflict},
		{fmt.Errorf("apply: %w", deploy.ErrUnavailable), http.StatusServiceUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError},
	} {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
