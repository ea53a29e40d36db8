package upgrade

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/turnout/turnout/internal/testkit"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"q.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestQuiesceWaitsForTLSHandshake: on a TLS listener a connection whose
// client has sent only the start of its ClientHello has not started (its
// request is still to come), so Quiesce waits for it until ctx ends; one
// whose handshake finished has, so Quiesce returns after the grace. On a
// plain listener the first bytes are the request's, so it has started.
func TestQuiesceWaitsForTLSHandshake(t *testing.T) {
	cert := selfSigned(t)
	// raw: the server reads through the connection's syscall.RawConn.
	serve := func(ln *Listener, raw bool) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if ln.tls {
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
					if tc.Handshake() != nil {
						return
					}
					c = tc
				}
				if raw {
					// As turnout's HTTP/1.1 server waits for a request.
					sc, ok := c.(syscall.Conn)
					if !ok {
						t.Errorf("a tracked connection is no syscall.Conn")
						return
					}
					rc, err := sc.SyscallConn()
					if err != nil {
						t.Error(err)
						return
					}
					rc.Read(func(fd uintptr) bool {
						_, err := syscall.Read(int(fd), make([]byte, 1))
						return err != syscall.EAGAIN
					})
					return
				}
				c.Read(make([]byte, 1))
			}()
		}
	}
	quiesce := func(ln *Listener, limit time.Duration) (waitedForCtx bool) {
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		ln.Quiesce(ctx)
		return ctx.Err() != nil
	}
	listen := func(tlsMode, rawRead bool) *Listener {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := Track(raw)
		if tlsMode {
			ln = TrackTLS(raw)
		}
		go serve(ln, rawRead)
		return ln
	}
	partialHello := []byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01} // a record header and a byte of a ClientHello

	t.Run("TLS, ClientHello only", func(t *testing.T) {
		ln := listen(true, false)
		c := testkit.Dial(t, ln.Addr().String(), 0)
		defer c.Close()
		c.Write(partialHello)
		time.Sleep(100 * time.Millisecond) // the server has read it
		if !quiesce(ln, 500*time.Millisecond) {
			t.Fatal("Quiesce returned while a TLS client was still in its handshake")
		}
	})
	t.Run("TLS, handshake done", func(t *testing.T) {
		ln := listen(true, false)
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "q.test"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("G"))
		time.Sleep(100 * time.Millisecond)
		if quiesce(ln, 10*time.Second) {
			t.Fatal("Quiesce waited for a TLS connection whose handshake had finished")
		}
	})
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain, first bytes, raw read %v", raw), func(t *testing.T) {
			ln := listen(false, raw)
			c := testkit.Dial(t, ln.Addr().String(), 0)
			defer c.Close()
			c.Write(partialHello)
			time.Sleep(100 * time.Millisecond)
			if quiesce(ln, 10*time.Second) {
				t.Fatal("Quiesce waited for a plain connection that had sent bytes")
			}
		})
	}
}
