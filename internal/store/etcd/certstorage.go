package etcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// CertStorage is a certmagic.Storage on the store's etcd cluster, so that
// every node of a fleet serves the same certificates and only one of them
// orders each from the CA: certmagic takes a Lock before ordering, and
// looks in the storage again once it holds it.
//
// Keys, under the store's prefix:
//
//	certmagic/<key>     certmagic's slash-separated key (ACME account,
//	                    certificates, keys, HTTP-01 challenge tokens); the
//	                    value is its modification time (8 bytes of Unix
//	                    nanoseconds, big-endian), then the data
//	certmagic-locks/<name>/<lease>
//	                    a lock and its waiters, one key per Lock call
//	                    attached to a lease of its own (etcd's
//	                    concurrency.Mutex): the oldest key holds the lock
//
// A "directory" is any prefix ending at a slash, as in the bolt store.
//
// Each Lock grants its own lease (the store's LeaseTTL) and keeps it alive
// until Unlock revokes it. A node that dies holding a lock stops renewing
// its lease, and etcd releases the lock when the lease expires: the next
// node waiting takes it after at most the TTL.
type CertStorage struct {
	s *Store

	mu    sync.Mutex
	locks map[string]*concurrency.Session // held, by lock name
}

// CertStorage returns the certmagic storage kept in s's etcd cluster under
// its prefix. The storages of all the nodes sharing the cluster and prefix
// exclude each other's locks, and so do two storages of one process.
func (s *Store) CertStorage() *CertStorage {
	return &CertStorage{s: s, locks: make(map[string]*concurrency.Session)}
}

var _ certmagic.Storage = (*CertStorage)(nil)

func (c *CertStorage) key(k string) string { return c.s.prefix + "certmagic/" + k }
func (c *CertStorage) lockKey(name string) string {
	// Escaped, so that the lock "a" does not see "a/b"'s keys as waiters.
	return c.s.prefix + "certmagic-locks/" + url.PathEscape(name)
}

// dir is the etcd prefix of the keys below path (every key for the root).
func (c *CertStorage) dir(path string) string {
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return c.key("")
	}
	return c.key(path + "/")
}

// Store writes value at key, replacing any earlier value.
func (c *CertStorage) Store(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return errors.New("cert storage: empty key")
	}
	v := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
	copy(v[8:], value)
	rctx, cancel := c.s.request(ctx)
	defer cancel()
	if _, err := c.s.client.Put(rctx, c.key(key), string(v)); err != nil {
		return c.s.fail(rctx, "cert storage: store "+key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (c *CertStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := c.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, fmt.Errorf("cert storage: %s: %w", key, fs.ErrNotExist)
	}
	return v[8:], nil
}

// get returns the stored value at key, time and data, or nil.
func (c *CertStorage) get(ctx context.Context, key string) ([]byte, error) {
	rctx, cancel := c.s.request(ctx)
	defer cancel()
	resp, err := c.s.client.Get(rctx, c.key(key))
	if err != nil {
		return nil, c.s.fail(rctx, "cert storage: load "+key, err)
	}
	if len(resp.Kvs) == 0 || len(resp.Kvs[0].Value) < 8 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

// Delete removes key and, like removing a directory, every key below it,
// in one transaction. Deleting a key that does not exist is not an error,
// as certmagic.Storage asks.
func (c *CertStorage) Delete(ctx context.Context, key string) error {
	if key == "" {
		return errors.New("cert storage: empty key")
	}
	rctx, cancel := c.s.request(ctx)
	defer cancel()
	_, err := c.s.client.Txn(rctx).Then(
		clientv3.OpDelete(c.key(key)),
		clientv3.OpDelete(c.dir(key), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return c.s.fail(rctx, "cert storage: delete "+key, err)
	}
	return nil
}

// Exists reports whether key is a value or a directory.
func (c *CertStorage) Exists(ctx context.Context, key string) bool {
	_, err := c.Stat(ctx, key)
	return err == nil
}

// List returns the keys directly under path, or every key below it when
// recursive is set. A path with nothing below it is an error wrapping
// fs.ErrNotExist.
func (c *CertStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	prefix := c.dir(path)
	rctx, cancel := c.s.request(ctx)
	defer cancel()
	resp, err := c.s.client.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, c.s.fail(rctx, "cert storage: list "+path, err)
	}
	root := len(c.key(""))
	var out []string
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		if !recursive {
			// Only the first level: "a/b/c" under "a" lists "a/b".
			if i := strings.IndexByte(key[len(prefix):], '/'); i >= 0 {
				key = key[:len(prefix)+i]
			}
		}
		key = key[root:]
		if len(out) == 0 || out[len(out)-1] != key {
			out = append(out, key)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cert storage: %s: %w", path, fs.ErrNotExist)
	}
	return out, nil
}

// Stat describes key: a value (terminal) or a directory.
func (c *CertStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	v, err := c.get(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	info := certmagic.KeyInfo{Key: key}
	if v != nil {
		info.IsTerminal = true
		info.Size = int64(len(v) - 8)
		info.Modified = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
		return info, nil
	}
	rctx, cancel := c.s.request(ctx)
	defer cancel()
	resp, err := c.s.client.Get(rctx, c.dir(key), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return certmagic.KeyInfo{}, c.s.fail(rctx, "cert storage: stat "+key, err)
	}
	if resp.Count == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("cert storage: %s: %w", key, fs.ErrNotExist)
	}
	return info, nil
}

// Lock waits until the lock called name is free — on every node sharing
// the cluster — and takes it, or returns ctx's error. Granting the lock's
// lease fails fast (the store's Timeout) when etcd does not answer.
func (c *CertStorage) Lock(ctx context.Context, name string) error {
	rctx, cancel := c.s.request(ctx)
	grant, err := c.s.client.Grant(rctx, c.s.leaseTTL)
	cancel()
	if err != nil {
		return c.s.fail(rctx, fmt.Sprintf("cert storage: lock %q", name), err)
	}
	// The session keeps the lease alive until Unlock, or until the store
	// closes: then the lease, and the lock, expire after the TTL.
	sess, err := concurrency.NewSession(c.s.client, concurrency.WithLease(grant.ID),
		concurrency.WithTTL(int(c.s.leaseTTL)), concurrency.WithContext(c.s.ctx))
	if err != nil {
		return c.s.fail(ctx, fmt.Sprintf("cert storage: lock %q", name), err)
	}
	if err := concurrency.NewMutex(sess, c.lockKey(name)).Lock(ctx); err != nil {
		sess.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.s.fail(ctx, fmt.Sprintf("cert storage: lock %q", name), err)
	}
	c.mu.Lock()
	c.locks[name] = sess
	c.mu.Unlock()
	return nil
}

// Unlock releases the lock called name by revoking its lease. When etcd
// does not answer, the lease is no longer kept alive, so the lock is
// released when it expires (the store's LeaseTTL).
func (c *CertStorage) Unlock(_ context.Context, name string) error {
	c.mu.Lock()
	sess, held := c.locks[name]
	delete(c.locks, name)
	c.mu.Unlock()
	if !held {
		return fmt.Errorf("cert storage: unlock %q: not locked", name)
	}
	if err := sess.Close(); err != nil {
		return fmt.Errorf("cert storage: unlock %q: %w; etcd releases it when its lease expires, within %ds", name, err, c.s.leaseTTL)
	}
	return nil
}
