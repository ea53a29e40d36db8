// Package etcd is turnout's fleet store: deploy.Store on an etcd cluster
// that every node of a fleet shares, so an apply on any node gets the next
// id exactly once and every node sees — and acknowledges — what is active.
//
// Keys, under the prefix (default /turnout/):
//
//	active              the active deployment id, in decimal ("42")
//	deployments/<id>    a deploy.Deployment as JSON; ids are zero-padded to
//	                    20 digits so that key order is id order
//	audit/<seq>         a deploy.AuditEvent as JSON, seq padded likewise
//	audit-seq           the last audit seq, in decimal
//	nodes/<name>        a node's deploy.Node (its ack) as JSON, attached to
//	                    that node's lease: it goes when the node stops
//	certmagic/<key>     certmagic's certificates, keys and ACME account
//	                    (CertStorage), shared by the fleet
//	certmagic-locks/    certmagic's locks, each held under a lease
//
// Create is one transaction comparing the active key with the deployment
// the change was based on, so two nodes never take one id. Only the KV,
// Txn, Watch and Lease calls of etcd 3.4 are used (Debian 12's etcd-server).
package etcd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/turnout/turnout/internal/deploy"
)

// Defaults of Options.
const (
	DefaultPrefix   = "/turnout/"
	DefaultTimeout  = 5 * time.Second
	DefaultLeaseTTL = 10 * time.Second
)

// Options says which etcd cluster to use and how.
type Options struct {
	// Endpoints are the client URLs of the etcd members, like
	// http://10.0.0.1:2379. Required.
	Endpoints []string
	// Prefix is prepended to every key, so that several fleets (or other
	// programs) can share a cluster. Default DefaultPrefix; a "/" is added
	// when it does not end with one.
	Prefix string
	// Timeout bounds every request to etcd, and connecting when there are
	// credentials to present. A request that gets no answer in time — the
	// cluster is down or has no quorum — fails with an error wrapping
	// deploy.ErrUnavailable. Default DefaultTimeout.
	Timeout time.Duration
	// Username and Password authenticate to an etcd cluster with auth
	// enabled. Both or neither.
	Username, Password string
	// TLS, when set, is used to connect (https endpoints).
	TLS *tls.Config
	// LeaseTTL is how long a node's ack outlives its last heartbeat: a node
	// that stops renewing its lease leaves Nodes after it. Default
	// DefaultLeaseTTL; etcd rounds it to whole seconds, at least its own
	// minimum (1.5 s with default election settings).
	LeaseTTL time.Duration
	// Logger receives the etcd client's own logs. Default: none.
	Logger *zap.Logger
}

// Store is a deploy.Store on etcd. It is safe for concurrent use; several
// Stores (one per node) share one cluster and prefix.
type Store struct {
	client    *clientv3.Client
	prefix    string
	endpoints string // for error messages
	hint      string // what to check when etcd does not answer
	timeout   time.Duration
	leaseTTL  int64 // seconds

	ctx    context.Context // ends on Close: stops watches and the lease keeper
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	acks  map[string]string // this node's records, JSON by name, to write again under a new lease
	lease clientv3.LeaseID  // 0 before the first Ack

	// answered is when etcd last answered a lease keep-alive (Unix ns).
	answered atomic.Int64

	// renewMu serialises granting a lease, so that the keeper and an Ack
	// that both find the lease gone grant one new lease, not two.
	renewMu sync.Mutex

	// beforeWatch, when set (tests), is called between Watch's read of the
	// active key and the watch it starts after that read's revision.
	beforeWatch func(rev int64)
	// beforeImportTxn, when set (tests), is called before Import's
	// transaction n (1 the first).
	beforeImportTxn func(n int)
}

var _ deploy.Store = (*Store)(nil)

// Open connects to the etcd cluster. It does not wait for the cluster to
// answer (a node may start while etcd is down and serve what it had),
// except to log in when there are credentials.
func Open(o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints: list the client URLs of the etcd members, like http://10.0.0.1:2379")
	}
	if (o.Username == "") != (o.Password == "") {
		return nil, errors.New("etcd store: give both username and password, or neither")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   o.Endpoints,
		DialTimeout: o.Timeout,
		Username:    o.Username,
		Password:    o.Password,
		TLS:         o.TLS,
		Logger:      o.Logger,
		// Notice a dead connection (a member gone without closing it) in
		// seconds, so requests move to another member.
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store at %s: %w", strings.Join(o.Endpoints, ", "), err)
	}
	hint := "is a majority of its members up and reachable?"
	if o.TLS != nil {
		// A refused handshake looks the same from here: say so.
		hint = "is a majority of its members up and reachable, and do they accept this node's TLS certificate?"
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Store{
		hint:      hint,
		client:    client,
		prefix:    o.Prefix,
		endpoints: strings.Join(o.Endpoints, ", "),
		timeout:   o.Timeout,
		leaseTTL:  max(int64((o.LeaseTTL+time.Second-1)/time.Second), 1),
		ctx:       ctx,
		cancel:    cancel,
		acks:      make(map[string]string),
	}, nil
}

func (s *Store) activeKey() string         { return s.prefix + "active" }
func (s *Store) deploymentsPrefix() string { return s.prefix + "deployments/" }
func (s *Store) auditPrefix() string       { return s.prefix + "audit/" }
func (s *Store) auditSeqKey() string       { return s.prefix + "audit-seq" }
func (s *Store) nodesPrefix() string       { return s.prefix + "nodes/" }

func (s *Store) deploymentKey(id uint64) string { return s.deploymentsPrefix() + pad(id) }
func (s *Store) auditKey(seq uint64) string     { return s.auditPrefix() + pad(seq) }

func pad(n uint64) string { return fmt.Sprintf("%020d", n) }

// request bounds one call to etcd by the store's timeout.
func (s *Store) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// fail wraps err from an etcd call made for op under the request context
// rctx. A call that ran out of time — rctx's deadline passed, whichever
// way etcd or gRPC words it — or found no member to talk to says so and
// wraps deploy.ErrUnavailable.
func (s *Store) fail(rctx context.Context, op string, err error) error {
	if errors.Is(rctx.Err(), context.DeadlineExceeded) || unavailable(err) {
		return fmt.Errorf("%s: etcd at %s did not answer within %v (%s): %w: %v",
			op, s.endpoints, s.timeout, s.hint, deploy.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch st := status.Convert(err); st.Code() {
	case codes.DeadlineExceeded, codes.Unavailable:
		return true
	case codes.Unknown:
		// A member without quorum whose own wait for a read index ran
		// out answers with its context's error as an unknown code,
		// sometimes before this request's deadline.
		if st.Message() == context.DeadlineExceeded.Error() {
			return true
		}
	}
	// etcd's own "no leader" and "request timed out", as typed errors.
	switch rpctypes.Error(err) {
	case rpctypes.ErrNoLeader, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost:
		return true
	}
	return false
}

// Create stores d as deployment prev+1 and makes it active, in one
// transaction that compares the active key with prev: when another node
// moved it first, nothing is stored and the answer is a
// *deploy.ConflictError naming the deployment active now.
//
// When etcd does not answer in time the error wraps deploy.ErrUnavailable
// and the deployment may or may not have been stored (the transaction may
// commit after the answer was given up on): `turnout history` tells.
func (s *Store) Create(ctx context.Context, prev uint64, d deploy.Deployment) (deploy.Deployment, error) {
	if d.Time.IsZero() {
		d.Time = time.Now().UTC()
	}
	d.ID = prev + 1
	v, err := json.Marshal(d)
	if err != nil {
		return deploy.Deployment{}, fmt.Errorf("store deployment: %w", err)
	}
	var isPrev clientv3.Cmp
	if prev == 0 {
		isPrev = clientv3.Compare(clientv3.CreateRevision(s.activeKey()), "=", 0)
	} else {
		isPrev = clientv3.Compare(clientv3.Value(s.activeKey()), "=", strconv.FormatUint(prev, 10))
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Txn(rctx).
		If(isPrev, clientv3.Compare(clientv3.CreateRevision(s.deploymentKey(d.ID)), "=", 0)).
		Then(
			clientv3.OpPut(s.deploymentKey(d.ID), string(v)),
			clientv3.OpPut(s.activeKey(), strconv.FormatUint(d.ID, 10)),
		).
		Else(clientv3.OpGet(s.activeKey())).
		Commit()
	if err != nil {
		err = s.fail(rctx, fmt.Sprintf("store deployment %d", d.ID), err)
		if errors.Is(err, deploy.ErrUnavailable) {
			err = fmt.Errorf("%w; it may be stored all the same when etcd answers: see `turnout history` before trying again", err)
		}
		return deploy.Deployment{}, err
	}
	if resp.Succeeded {
		return d, nil
	}
	conflict := &deploy.ConflictError{Based: prev}
	if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) == 1 {
		if id, err := strconv.ParseUint(string(kvs[0].Value), 10, 64); err == nil {
			// Best effort: the error names the winner's author when it can.
			conflict.Active, err = s.Get(rctx, id)
			if err != nil {
				conflict.Active = deploy.Deployment{ID: id}
			}
		}
	}
	return deploy.Deployment{}, conflict
}

// Get returns deployment id, or an error wrapping deploy.ErrNotFound.
func (s *Store) Get(ctx context.Context, id uint64) (deploy.Deployment, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, s.deploymentKey(id))
	if err != nil {
		return deploy.Deployment{}, s.fail(rctx, fmt.Sprintf("read deployment %d", id), err)
	}
	if len(resp.Kvs) == 0 {
		return deploy.Deployment{}, fmt.Errorf("deployment %d: %w", id, deploy.ErrNotFound)
	}
	return decodeDeployment(id, resp.Kvs[0].Value)
}

func decodeDeployment(id uint64, v []byte) (deploy.Deployment, error) {
	var d deploy.Deployment
	if err := json.Unmarshal(v, &d); err != nil {
		return deploy.Deployment{}, fmt.Errorf("decode deployment %d: %w", id, err)
	}
	return d, nil
}

// Active returns the active deployment, or an error wrapping
// deploy.ErrNotFound when the store is empty.
func (s *Store) Active(ctx context.Context) (deploy.Deployment, error) {
	id, _, err := s.activeID(ctx)
	if err != nil {
		return deploy.Deployment{}, err
	}
	if id == 0 {
		return deploy.Deployment{}, fmt.Errorf("no active deployment: %w", deploy.ErrNotFound)
	}
	return s.Get(ctx, id)
}

// activeID reads the active id (0 when the store is empty) and the
// revision it was read at.
func (s *Store) activeID(ctx context.Context) (uint64, int64, error) {
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, s.activeKey())
	if err != nil {
		return 0, 0, s.fail(rctx, "read the active deployment", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, resp.Header.Revision, nil
	}
	id, err := strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("read the active deployment: key %s holds %q, not an id", s.activeKey(), resp.Kvs[0].Value)
	}
	return id, resp.Header.Revision, nil
}

// List returns up to limit deployments, newest first, with ids below before
// (0: from the newest). A limit of 0 or less means no limit.
func (s *Store) List(ctx context.Context, before uint64, limit int) ([]deploy.Deployment, error) {
	opts := []clientv3.OpOption{clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if before == 0 {
		opts = append(opts, clientv3.WithPrefix())
	} else {
		opts = append(opts, clientv3.WithRange(s.deploymentKey(before)))
	}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, s.deploymentsPrefix(), opts...)
	if err != nil {
		return nil, s.fail(rctx, "list deployments", err)
	}
	out := make([]deploy.Deployment, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		id, _ := strconv.ParseUint(strings.TrimPrefix(string(kv.Key), s.deploymentsPrefix()), 10, 64)
		d, err := decodeDeployment(id, kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Audit appends e to the audit trail, assigning Seq and, if zero, Time. The
// next seq is taken in a transaction on the audit-seq key, tried again when
// another node took it first.
func (s *Store) Audit(ctx context.Context, e deploy.AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	for {
		resp, err := s.client.Get(rctx, s.auditSeqKey())
		if err != nil {
			return s.fail(rctx, "append audit event", err)
		}
		var last uint64
		var rev int64
		if len(resp.Kvs) == 1 {
			last, _ = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64)
			rev = resp.Kvs[0].ModRevision
		}
		e.Seq = last + 1
		v, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("append audit event: %w", err)
		}
		txn, err := s.client.Txn(rctx).
			If(clientv3.Compare(clientv3.ModRevision(s.auditSeqKey()), "=", rev)).
			Then(
				clientv3.OpPut(s.auditSeqKey(), strconv.FormatUint(e.Seq, 10)),
				clientv3.OpPut(s.auditKey(e.Seq), string(v)),
			).
			Commit()
		if err != nil {
			return s.fail(rctx, "append audit event", err)
		}
		if txn.Succeeded {
			return nil
		}
	}
}

// AuditLog returns up to limit audit events, newest first. A limit of 0 or
// less means no limit.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]deploy.AuditEvent, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	rctx, cancel := s.request(ctx)
	defer cancel()
	resp, err := s.client.Get(rctx, s.auditPrefix(), opts...)
	if err != nil {
		return nil, s.fail(rctx, "read the audit trail", err)
	}
	out := make([]deploy.AuditEvent, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e deploy.AuditEvent
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("decode audit event %s: %w", kv.Key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Close stops the watches and the lease keeper, revokes this node's lease
// (its acks leave Nodes at once rather than after the TTL) and closes the
// connection.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	lease := s.lease
	s.mu.Unlock()
	if lease != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), min(s.timeout, time.Second))
		s.client.Revoke(ctx, lease)
		cancel()
	}
	return s.client.Close()
}
