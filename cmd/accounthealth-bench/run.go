package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/store/postgres/pgtest"
)

const (
	storeSQLite   = "sqlite"
	storePostgres = "postgres"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "accounthealth-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintln(stderr, "building cmd/accounthealth")
	bin, err := buildService(ctx, root, tmp)
	if err != nil {
		return err
	}
	rep := &report{Machine: machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		Commit: commit(ctx, root), Started: time.Now().UTC()}, Config: cfg.settings()}
	noop, err := startNoop()
	if err != nil {
		return err
	}
	defer noop.stop()

	var runErr error
	for _, st := range cfg.stores {
		fmt.Fprintln(stderr, "measuring", st)
		if runErr = measureStore(ctx, cfg, rep, bin, tmp, st, noop, stderr); runErr != nil {
			runErr = fmt.Errorf("%s: %w", st, runErr)
			break
		}
	}
	var void voidError
	if errors.As(runErr, &void) {
		rep.Void = runErr.Error()
	}
	if err := rep.write(cfg, stdout); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

// storeRun is one store's service and what the rows need of it.
type storeRun struct {
	cfg    config
	rep    *report
	store  string
	svc    *serviceProcess
	noop   *noopServer
	api    ahv1.AccountHealthServiceClient
	conn   *grpc.ClientConn // api's
	bodies *bodies
	ledger *ledger
	stderr io.Writer
}

func measureStore(ctx context.Context, cfg config, rep *report, bin, tmp, store string, noop *noopServer, stderr io.Writer) error {
	storeEnv, size, cleanup, err := prepareStore(ctx, cfg, tmp, store)
	if err != nil {
		return err
	}
	defer cleanup()
	var pprofEnv []string
	if cfg.profile != "" {
		pprofEnv = append(pprofEnv, "ACCOUNTHEALTH_PPROF=true")
	}
	svc, err := startService(ctx, bin, storeEnv, pprofEnv...)
	if err != nil {
		return err
	}
	defer svc.kill()
	b, err := newBodies()
	if err != nil {
		return err
	}
	r := &storeRun{cfg: cfg, rep: rep, store: store, svc: svc, noop: noop, bodies: b, ledger: &ledger{refusedBy: map[int]int64{}}, stderr: stderr}
	figures := storeFigures{Store: store, ReadyEmptyMS: ms(svc.ready)}

	conn, err := grpc.NewClient(svc.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	r.api, r.conn = ahv1.NewAccountHealthServiceClient(conn), conn

	empty, err := r.intakeRows(ctx)
	if err != nil {
		return err
	}
	full, err := r.fill(ctx, empty)
	if err != nil {
		return err
	}
	if err := r.streamRow(ctx, full); err != nil {
		return err
	}
	if err := r.fanoutRows(ctx); err != nil {
		return err
	}
	missing, err := findAcknowledged(ctx, r.api, b, r.ledger, cfg.concurrency)
	if err != nil {
		return err
	}
	figures.Ledger = r.ledger.summary(missing)
	if missing > 0 {
		rep.Stores = append(rep.Stores, figures)
		return voidError{fmt.Errorf("%d of %d acknowledged deliveries are not found through GetAccountHealth", missing, r.ledger.acked.Load())}
	}
	if err := r.readRows(ctx); err != nil {
		return err
	}
	_, figures.PeakRSSBytes, err = memory(svc.pid())
	if err != nil {
		return err
	}
	if err := svc.stop(); err != nil {
		return err
	}
	if err := r.measureAtRest(ctx, &figures, size, bin, storeEnv); err != nil {
		return err
	}
	rep.Stores = append(rep.Stores, figures)
	return nil
}

// measureAtRest measures the stopped service's store, then starts it again
// at that size: ready time and RSS.
func (r *storeRun) measureAtRest(ctx context.Context, figures *storeFigures, size func(context.Context) (int64, error), bin, storeEnv string) error {
	accounts := r.ledger.acked.Load()
	storeBytes, err := size(ctx)
	if err != nil {
		return err
	}
	figures.Accounts = accounts
	figures.StoreBytesPerAccount = float64(storeBytes) / float64(accounts)
	figures.BodyBytesPerAccount = float64(r.ledger.ackedBytes.Load()) / float64(accounts)

	again, err := startService(ctx, bin, storeEnv)
	if err != nil {
		return fmt.Errorf("restart at %d accounts: %w", accounts, err)
	}
	defer again.kill()
	figures.ReadyMS = ms(again.ready)
	if figures.ReadyRSSBytes, _, err = memory(again.pid()); err != nil {
		return err
	}
	return again.stop()
}

// prepareStore gives the service an empty store: a directory for SQLite, a
// fresh schema for PostgreSQL. size measures the store once the service
// has stopped.
func prepareStore(ctx context.Context, cfg config, tmp, store string) (env string, size func(context.Context) (int64, error), cleanup func(), err error) {
	if store == storeSQLite {
		dir := filepath.Join(tmp, "data")
		return "ACCOUNTHEALTH_DATA_DIR=" + dir, func(context.Context) (int64, error) { return dirSize(dir) }, func() { os.RemoveAll(dir) }, nil
	}
	u := cfg.databaseURL
	cleanup = func() {}
	if u == "" {
		base, err := pgtest.Find()
		if err != nil {
			return "", nil, nil, fmt.Errorf("%w\n(or measure SQLite alone: -stores sqlite)", err)
		}
		var drop func(context.Context) error
		if u, drop, err = pgtest.NewSchema(ctx, base); err != nil {
			return "", nil, nil, err
		}
		cleanup = func() { _ = drop(context.Background()) }
	}
	size = func(ctx context.Context) (int64, error) {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return 0, err
		}
		defer conn.Close(context.Background())
		// The tables of the schema the service used, with their indexes
		// and TOAST.
		var n int64
		err = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
			FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
			WHERE ns.nspname = current_schema() AND c.relkind IN ('r', 'm')`).Scan(&n)
		return n, err
	}
	return "ACCOUNTHEALTH_DATABASE_URL=" + u, size, cleanup, nil
}

// intakeRows measures, for each number of senders, the no-op webhook and
// then signed intake into the store; it returns the row of the most
// senders.
func (r *storeRun) intakeRows(ctx context.Context) (row, error) {
	var last row
	for _, n := range r.cfg.senders {
		base := r.row(ctx, "no-op POST via grpc-gateway -> gRPC", n, r.noop.pid(), nil, r.noopPost(n))
		var res result
		err := r.profiled(ctx, n == slices.Max(r.cfg.senders), "intake", func() (err error) {
			res, err = r.intake(ctx, n, forDuration(r.cfg.duration))
			return err
		})
		if err != nil {
			return last, err
		}
		row := r.add("signed intake into an empty store", n, res, &base)
		if n == slices.Max(r.cfg.senders) {
			last = row
		}
	}
	return last, nil
}

// intake sends signed deliveries from n senders until done, and checks
// the ledger.
func (r *storeRun) intake(ctx context.Context, n int, done func() bool) (result, error) {
	s := newSender(webhookURL(r.svc.webhook), n, r.bodies, r.ledger)
	res := load(ctx, r.svc.pid(), n, done, s.send)
	s.collect()
	if err := r.ledger.balance(); err != nil {
		return res, voidError{err}
	}
	return res, ctx.Err()
}

// fill brings the store to the accounts asked for, by intake at the most
// senders, then measures intake at that size against intake into the
// empty store.
func (r *storeRun) fill(ctx context.Context, empty row) (row, error) {
	want := r.cfg.accounts
	n := slices.Max(r.cfg.senders)
	if from := r.ledger.acked.Load(); from < want {
		fmt.Fprintf(r.stderr, "%s: filling the store to %d accounts\n", r.store, want)
		res, err := r.intake(ctx, n, func() bool { return r.ledger.acked.Load() >= want })
		if err != nil {
			return row{}, err
		}
		r.add(fmt.Sprintf("signed intake, filling %d to %d accounts", from, want), n, res, nil)
	}
	res, err := r.intake(ctx, n, forDuration(r.cfg.duration))
	if err != nil {
		return row{}, err
	}
	return r.add(fmt.Sprintf("signed intake at %d accounts, vs into an empty store", r.ledger.acked.Load()-res.ops), n, res, &empty), nil
}

// streamRow measures intake at the most senders while subscribers in a
// process of their own read StreamDisconnections over REST, against intake
// without them just before. Every delivery in error is an event for each
// subscriber; the row records how many of those they received.
func (r *storeRun) streamRow(ctx context.Context, without row) error {
	if r.cfg.subscribers == 0 {
		return nil
	}
	subs, err := startSubscribers(r.cfg.subscribers, r.streamURL())
	if err != nil {
		return err
	}
	n := slices.Max(r.cfg.senders)
	before := len(r.ledger.ackedIDs)
	res, intakeErr := r.intake(ctx, n, forDuration(r.cfg.duration))
	return r.addStreamRow(fmt.Sprintf("signed intake while %d subscribers read the stream over REST, vs without", r.cfg.subscribers),
		n, res, &without, subs, r.eventsSince(before, failedEvery), intakeErr)
}

// streamURL is the service's StreamDisconnections over REST.
func (r *storeRun) streamURL() string { return "http://" + r.svc.rest + "/v1/disconnections:stream" }

// addStreamRow adds a row of intake that subscribers read, with the events
// they received of those they were to get, and the events' latency.
func (r *storeRun) addStreamRow(name string, n int, res result, base *row, subs *subscribers, perStream int64, intakeErr error) error {
	got, p50, p99, err := subs.finish(perStream)
	if err := errors.Join(intakeErr, err); err != nil {
		return err
	}
	r.add(name, n, res, base)
	last := &r.rep.Rows[len(r.rep.Rows)-1]
	last.EventsExpected, last.EventsReceived = perStream*int64(subs.n), got
	last.EventP50MS, last.EventP99MS = ms(p50), ms(p99)
	fmt.Fprintf(r.stderr, "%s: the subscribers received %d of %d events, p50 %.2f ms, p99 %.2f ms after receipt\n",
		r.store, got, last.EventsExpected, last.EventP50MS, last.EventP99MS)
	return nil
}

// profiled runs a row's load, and when on and -profile asks for profiles,
// takes a CPU profile of the service for the row's duration and then its
// allocation profile, as <store>-<what>-cpu.pprof and -allocs.pprof.
func (r *storeRun) profiled(ctx context.Context, on bool, what string, run func() error) error {
	if !on || r.cfg.profile == "" {
		return run()
	}
	seconds := int(math.Ceil(r.cfg.duration.Seconds()))
	cpu := make(chan error, 1)
	go func() { cpu <- r.fetchProfile(ctx, fmt.Sprintf("profile?seconds=%d", seconds), what+"-cpu") }()
	err := run()
	if err := errors.Join(err, <-cpu); err != nil {
		return err
	}
	if err := r.fetchProfile(ctx, "allocs", what+"-allocs"); err != nil {
		return err
	}
	fmt.Fprintf(r.stderr, "%s: profiles of %s in %s\n", r.store, what, r.cfg.profile)
	return nil
}

// fetchProfile saves the service's /debug/pprof/<what> as
// <store>-<name>.pprof in the profile directory. It runs beside the load,
// so it writes nothing to stderr.
func (r *storeRun) fetchProfile(ctx context.Context, what, name string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.svc.rest+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("profile: GET /debug/pprof/%s: %s", what, res.Status)
	}
	if err := os.MkdirAll(r.cfg.profile, 0o755); err != nil {
		return err
	}
	path := filepath.Join(r.cfg.profile, r.store+"-"+name+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRows measures the reads at the accounts now in the store.
func (r *storeRun) readRows(ctx context.Context) error {
	c := r.cfg.concurrency
	noopConn, err := grpc.NewClient(r.noop.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer noopConn.Close()
	noopAPI := ahv1.NewAccountHealthServiceClient(noopConn)
	base := r.row(ctx, "no-op unary gRPC", c, r.noop.pid(), nil, func(ctx context.Context, _ int) error {
		_, err := noopAPI.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: "no-op"})
		return err
	})

	ids := r.ledger.ackedIDs
	rngs := make([]*rand.Rand, c)
	for i := range rngs {
		rngs[i] = rand.New(rand.NewPCG(uint64(i), 17))
	}
	if err := r.profiled(ctx, true, "GetAccountHealth", func() error {
		r.row(ctx, "GetAccountHealth (gRPC)", c, r.svc.pid(), &base, func(ctx context.Context, w int) error {
			id := r.bodies.accountID(ids[rngs[w].IntN(len(ids))])
			_, err := r.api.GetAccountHealth(ctx, &ahv1.GetAccountHealthRequest{AccountId: id})
			return err
		})
		return nil
	}); err != nil {
		return err
	}
	// The same calls with the answer kept as the bytes it came in, as a
	// caller that forwards it would: the decoding of the account object's
	// Struct is the callers' (on these cores), not the service's, and the
	// no-op's empty answer costs the callers nothing to decode.
	r.row(ctx, "GetAccountHealth, answers not decoded (gRPC)", c, r.svc.pid(), &base, func(ctx context.Context, w int) error {
		id := r.bodies.accountID(ids[rngs[w].IntN(len(ids))])
		return r.conn.Invoke(ctx, ahv1.AccountHealthService_GetAccountHealth_FullMethodName, &ahv1.GetAccountHealthRequest{AccountId: id}, new(emptypb.Empty))
	})

	// Each caller pages through the accounts in error, from the start
	// again after the last page.
	tokens := make([]string, c)
	r.row(ctx, "ListAccountHealth, 50 a page, state AUTH_FAILED", c, r.svc.pid(), nil, func(ctx context.Context, w int) error {
		resp, err := r.api.ListAccountHealth(ctx, &ahv1.ListAccountHealthRequest{
			States: []ahv1.HealthState{ahv1.HealthState_HEALTH_STATE_AUTH_FAILED}, PageSize: 50, PageToken: tokens[w]})
		if err != nil {
			return err
		}
		tokens[w] = resp.GetNextPageToken()
		return nil
	})

	r.row(ctx, "GetHealthSummary (gRPC)", 1, r.svc.pid(), nil, func(ctx context.Context, _ int) error {
		_, err := r.api.GetHealthSummary(ctx, &ahv1.GetHealthSummaryRequest{})
		return err
	})

	client := &http.Client{Timeout: readTimeout}
	metricsURL := "http://" + r.svc.rest + "/metrics"
	r.row(ctx, "GET /metrics", 1, r.svc.pid(), nil, func(ctx context.Context, _ int) error {
		return get(ctx, client, metricsURL)
	})
	return ctx.Err()
}

// row runs one row for the configured duration and adds it to the report.
// base, when not nil, is the baseline it is compared with.
func (r *storeRun) row(ctx context.Context, name string, concurrency, pid int, base *row, do op) row {
	return r.add(name, concurrency, load(ctx, pid, concurrency, forDuration(r.cfg.duration), do), base)
}

func (r *storeRun) add(name string, concurrency int, res result, base *row) row {
	rw := newRow(r.store, name, concurrency, res, base)
	fmt.Fprintf(r.stderr, "%s: %s, %d: %.0f/s, p99 %.2f ms\n", r.store, name, concurrency, rw.Rate, rw.P99MS)
	r.rep.Rows = append(r.rep.Rows, rw)
	return rw
}

// noopPost posts the same deliveries, signed, to the no-op webhook: the
// senders do the same work as for the service.
func (r *storeRun) noopPost(concurrency int) op {
	return newSender(webhookURL(r.noop.http), concurrency, r.bodies, &ledger{refusedBy: map[int]int64{}}).send
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
