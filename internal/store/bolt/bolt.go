// Package bolt is turnout's embedded deployment store: one bbolt file holding
// the deployments, the active pointer and the audit trail, implementing
// deploy.Store for a single node.
//
// The file hand-over of a zero-downtime upgrade (Handover) lives here, not
// in package upgrade: it exists because bbolt locks its file for one process,
// which is this store's property (a fleet store needs no hand-over), while
// upgrade only calls Release and Reclaim and knows nothing of stores.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/turnout/turnout/internal/deploy"
)

// Bucket and key names. Deployment and audit keys are big-endian uint64 so
// that bbolt's byte order is numeric order and cursors walk ids in sequence.
var (
	bucketDeployments = []byte("deployments")
	bucketMeta        = []byte("meta")
	bucketAudit       = []byte("audit")
	keyActive         = []byte("active")
)

// lockTimeout bounds how long Open waits for the file lock held by another
// process. bbolt would otherwise wait forever.
const lockTimeout = time.Second

// pollInterval is how often Watch re-reads the active id. In-process Creates
// notify watchers at once; polling keeps Watch honest about writes that did
// not go through this Store value.
const pollInterval = 250 * time.Millisecond

// Store is a deploy.Store backed by a bbolt file. It is safe for concurrent
// use. Every Create and Audit is one fsynced bbolt transaction, so an
// acknowledged write survives a crash.
type Store struct {
	db   *bbolt.DB
	path string

	mu       sync.Mutex
	watchers map[chan struct{}]struct{} // poked after every Create
	nodes    map[string]deploy.Node     // acknowledgements, by name
	closed   chan struct{}
	wg       sync.WaitGroup // watcher goroutines
}

var _ deploy.Store = (*Store)(nil)

// Open opens (creating if needed) the store file at path. When another
// process holds the file, Open fails after one second instead of waiting.
func Open(path string) (*Store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("store %s is locked by another process (is another turnout running on it?)", path)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketDeployments, bucketMeta, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &Store{
		db:       db,
		path:     path,
		watchers: make(map[chan struct{}]struct{}),
		nodes:    make(map[string]deploy.Node),
		closed:   make(chan struct{}),
	}, nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func btoi(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Create stores d under id prev+1 and makes it active in one transaction,
// or returns a *deploy.ConflictError when prev is not the active id. In
// one process the deploy.Service serialises its changes, so that happens
// only to a caller that read the active id before another change.
func (s *Store) Create(ctx context.Context, prev uint64, d deploy.Deployment) (deploy.Deployment, error) {
	if err := ctx.Err(); err != nil {
		return deploy.Deployment{}, err
	}
	if d.Time.IsZero() {
		d.Time = time.Now().UTC()
	}
	var conflict *deploy.ConflictError
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if active := btoi(tx.Bucket(bucketMeta).Get(keyActive)); active != prev {
			conflict = &deploy.ConflictError{Based: prev}
			conflict.Active, _ = getDeployment(tx, active)
			return conflict
		}
		b := tx.Bucket(bucketDeployments)
		d.ID = prev + 1
		if err := b.SetSequence(d.ID); err != nil {
			return err
		}
		v, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if err := b.Put(itob(d.ID), v); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyActive, itob(d.ID))
	})
	if conflict != nil {
		return deploy.Deployment{}, conflict
	}
	if err != nil {
		return deploy.Deployment{}, fmt.Errorf("store deployment: %w", err)
	}
	s.notify()
	return d, nil
}

// notify pokes every watcher without blocking: a watcher that has not yet
// consumed the previous poke will re-read the latest id anyway.
func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func getDeployment(tx *bbolt.Tx, id uint64) (deploy.Deployment, error) {
	v := tx.Bucket(bucketDeployments).Get(itob(id))
	if v == nil {
		return deploy.Deployment{}, fmt.Errorf("deployment %d: %w", id, deploy.ErrNotFound)
	}
	var d deploy.Deployment
	if err := json.Unmarshal(v, &d); err != nil {
		return deploy.Deployment{}, fmt.Errorf("decode deployment %d: %w", id, err)
	}
	return d, nil
}

// Get returns deployment id, or an error wrapping deploy.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uint64) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		d, err = getDeployment(tx, id)
		return err
	})
	return d, err
}

// Active returns the active deployment, or an error wrapping
// deploy.ErrNotFound when the store is empty.
func (s *Store) Active(ctx context.Context) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := s.db.View(func(tx *bbolt.Tx) error {
		id := btoi(tx.Bucket(bucketMeta).Get(keyActive))
		if id == 0 {
			return fmt.Errorf("no active deployment: %w", deploy.ErrNotFound)
		}
		var err error
		d, err = getDeployment(tx, id)
		return err
	})
	return d, err
}

func (s *Store) activeID() (uint64, error) {
	var id uint64
	err := s.db.View(func(tx *bbolt.Tx) error {
		id = btoi(tx.Bucket(bucketMeta).Get(keyActive))
		return nil
	})
	return id, err
}

// List returns up to limit deployments, newest first, with ids below before
// (0: from the newest). A limit of 0 or less means no limit.
func (s *Store) List(ctx context.Context, before uint64, limit int) ([]deploy.Deployment, error) {
	var out []deploy.Deployment
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketDeployments).Cursor()
		var k, v []byte
		if before == 0 {
			k, v = c.Last()
		} else {
			// Seek lands on before itself or the next key above it (or
			// nothing); either way the previous key is the first one below.
			k, _ = c.Seek(itob(before))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var d deploy.Deployment
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode deployment %d: %w", btoi(k), err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Audit appends e to the audit trail, assigning Seq and, if zero, Time.
func (s *Store) Audit(ctx context.Context, e deploy.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(itob(seq), v)
	})
	if err != nil {
		return fmt.Errorf("append audit event: %w", err)
	}
	return nil
}

// AuditLog returns up to limit audit events, newest first. A limit of 0 or
// less means no limit.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]deploy.AuditEvent, error) {
	var out []deploy.AuditEvent
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var e deploy.AuditEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode audit event %d: %w", btoi(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Watch sends the active deployment id at start (when the store is not
// empty) and whenever it changes, until ctx ends or the store is closed; the
// channel is then closed. It has room for one id: a slow receiver misses
// intermediate ids but always gets the latest. Creates never wait on it.
func (s *Store) Watch(ctx context.Context) <-chan uint64 {
	out := make(chan uint64, 1)
	poke := make(chan struct{}, 1)
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		close(out)
		return out
	default:
	}
	s.watchers[poke] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.wg.Done()
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.watchers, poke)
			s.mu.Unlock()
		}()
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		var last uint64
		for {
			if id, err := s.activeID(); err == nil && id != 0 && id != last {
				last = id
				// Latest wins: this goroutine is the only sender, so after
				// dropping an unread id the send cannot block.
				select {
				case <-out:
				default:
				}
				out <- id
			}
			select {
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			case <-poke:
			case <-tick.C:
			}
		}
	}()
	return out
}

// Ack records what node n serves. A bolt store is a fleet of one: the
// node that has it open, whose record lives as long as this Store value.
func (s *Store) Ack(ctx context.Context, n deploy.Node) error {
	if n.Name == "" {
		return errors.New("ack: the node has no name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[n.Name] = n
	return nil
}

// Nodes returns the nodes acknowledged through this Store: the node
// itself, once it has acked.
func (s *Store) Nodes(ctx context.Context) ([]deploy.Node, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]deploy.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b deploy.Node) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Close stops every watcher and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	select {
	case <-s.closed:
		s.mu.Unlock()
		return nil
	default:
	}
	close(s.closed)
	s.mu.Unlock()
	s.wg.Wait()
	return s.db.Close()
}

var _ deploy.Importer = (*Store)(nil)

// Import writes h — ids, seqs and times as they are — into the store in
// one transaction, when the store holds no deployment and no audit event;
// otherwise it writes nothing and returns an error wrapping
// deploy.ErrNotEmpty. The buckets' sequences are set to the last id and
// seq, so Create and Audit continue after them.
func (s *Store) Import(ctx context.Context, h deploy.History) error {
	if err := h.Check(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		deps, audit, meta := tx.Bucket(bucketDeployments), tx.Bucket(bucketAudit), tx.Bucket(bucketMeta)
		if k, _ := deps.Cursor().First(); k != nil || meta.Get(keyActive) != nil {
			return fmt.Errorf("%s holds deployments: %w; copy into a new file", s.path, deploy.ErrNotEmpty)
		}
		if k, _ := audit.Cursor().First(); k != nil {
			return fmt.Errorf("%s holds audit events: %w; copy into a new file", s.path, deploy.ErrNotEmpty)
		}
		for _, d := range h.Deployments {
			v, err := json.Marshal(d)
			if err != nil {
				return err
			}
			if err := deps.Put(itob(d.ID), v); err != nil {
				return err
			}
		}
		for _, e := range h.Audit {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := audit.Put(itob(e.Seq), v); err != nil {
				return err
			}
		}
		if n := len(h.Deployments); n > 0 {
			if err := deps.SetSequence(h.Deployments[n-1].ID); err != nil {
				return err
			}
			if err := meta.Put(keyActive, itob(h.Active)); err != nil {
				return err
			}
		}
		if n := len(h.Audit); n > 0 {
			return audit.SetSequence(h.Audit[n-1].Seq)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, deploy.ErrNotEmpty) {
			return err
		}
		return fmt.Errorf("import into %s: %w", s.path, err)
	}
	s.notify()
	return nil
}
