package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
)

// Role is what a token may do. Each role includes the ones below it.
type Role int

const (
	RoleNone     Role = iota
	RoleViewer        // read status, deployments, diffs
	RoleDeployer      // also apply, rollback, route off|on
	RoleAdmin         // also read the audit trail
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleDeployer:
		return "deployer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses "viewer", "deployer" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "deployer":
		return RoleDeployer, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q: use viewer, deployer or admin", s)
}

// credential is one accepted token, kept only as its SHA-256.
type credential struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// generatedTokenName is the name of the token turnout generates when none
// is configured; it appears as the author of deployments made with it.
const generatedTokenName = "admin"

// loadGeneratedToken reads the admin token from path, or generates one and
// writes it there (mode 0600) when the file does not exist. The token is
// never logged.
func loadGeneratedToken(path string, log *slog.Logger) (credential, error) {
	if path == "" {
		return credential{}, errors.New("admin: no tokens configured and no token file to keep a generated one; set admin.tokens in the config")
	}
	tok, err := readTokenFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var raw [32]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return credential{}, fmt.Errorf("admin: generate token: %w", err)
		}
		tok = hex.EncodeToString(raw[:])
		err = writeTokenFile(path, tok)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			tok, err = readTokenFile(path)
		} else if err == nil {
			log.Info("generated an admin token; use it with --token-file or TURNOUT_TOKEN", "file", path)
		}
	} else if err == nil {
		log.Info("using the generated admin token", "file", path)
	}
	if err != nil {
		return credential{}, err
	}
	return credential{name: generatedTokenName, role: RoleAdmin, hash: sha256.Sum256([]byte(tok))}, nil
}

func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin: token file %s is accessible to other users (mode %04o); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin: read token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin: token file %s is empty; delete it to generate a new token", path)
	}
	return tok, nil
}

func writeTokenFile(path, tok string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("admin: write token file: %w", err)
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("admin: write token file: %w", err)
	}
	return nil
}

// authenticate returns the credential of the request's bearer token.
// ok is false when there is no token (missing true) or it is unknown.
//
// The SHA-256 of the presented token is compared with every configured hash
// in constant time, without stopping at a match, so that neither the token
// nor which credential matched shows in the response time.
func (s *Server) authenticate(r *http.Request) (c credential, missing, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if h == "" || !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return credential{}, true, false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := -1
	for i := range s.creds {
		eq := subtle.ConstantTimeCompare(sum[:], s.creds[i].hash[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return credential{}, false, false
	}
	return s.creds[match], false, true
}
