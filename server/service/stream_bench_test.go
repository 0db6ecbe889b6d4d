package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
	"github.com/accounthealth/accounthealth/server/webhook"
)

// BenchmarkStreamFanout measures StreamDisconnections end to end: signed
// deliveries sent over gRPC at a steady 1,000/s while 1, 100 or 1,000
// subscribers (spread over 8 client connections) read the stream. In the
// "every" runs each delivery causes a disconnection or recovery (the worst
// case: 1,000 events/s to every subscriber); in the "1in10" runs one
// delivery in ten does and the rest are routine accounts.updated scans of
// healthy accounts, closer to real traffic. Latency runs from the moment
// a delivery is sent to the moment a subscriber receives its event, so it
// includes verification, the durable commit and the fan-out. CPU is the
// whole process: server, sender and subscribers.
//
//	go test -run '^$' -bench BenchmarkStreamFanout -benchtime 1x ./server/service/
func BenchmarkStreamFanout(b *testing.B) {
	for _, eventEvery := range []int{1, 10} {
		for _, subscribers := range []int{1, 100, 1000} {
			name := fmt.Sprintf("events=every/subscribers=%d", subscribers)
			if eventEvery > 1 {
				name = fmt.Sprintf("events=1in%d/subscribers=%d", eventEvery, subscribers)
			}
			b.Run(name, func(b *testing.B) {
				for range b.N {
					benchFanout(b, subscribers, eventEvery, 1000, 5*time.Second)
				}
			})
		}
	}
}

func benchFanout(b *testing.B, subscribers, eventEvery, rate int, duration time.Duration) {
	e := start(b, nil)
	conns := make([]*grpc.ClientConn, 8)
	for i := range conns {
		c, err := grpc.NewClient(e.addrs.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	deliveries := rate * int(duration/time.Second)
	total := deliveries / eventEvery // events each subscriber must get
	// sentAt[n] is when delivery n left, in Unix nanoseconds, stored before
	// it is sent so a subscriber never waits for it.
	sentAt := make([]atomic.Int64, deliveries)
	latencies := make([][]time.Duration, subscribers)
	var ready, done sync.WaitGroup
	for i := range subscribers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			st, err := ahv1.NewAccountHealthServiceClient(conns[i%len(conns)]).StreamDisconnections(ctx, &ahv1.StreamDisconnectionsRequest{IncludeRecoveries: true})
			if err != nil {
				b.Error(err)
				ready.Done()
				return
			}
			if _, err := st.Recv(); err != nil { // the opening heartbeat
				b.Error(err)
			}
			ready.Done()
			lat := make([]time.Duration, 0, total)
			perAccount := map[string]int{}
			for len(lat) < total {
				msg, err := st.Recv()
				if err != nil {
					return
				}
				ev := msg.GetEvent()
				if ev == nil {
					continue
				}
				// Events of one account arrive in order, so the i-th event of
				// acct-X comes from transition X+200i, which is delivery
				// eventEvery*(X+200i).
				var x int
				fmt.Sscanf(ev.GetAccountId(), "acct-%d", &x)
				n := eventEvery * (x + 200*perAccount[ev.GetAccountId()])
				perAccount[ev.GetAccountId()]++
				lat = append(lat, time.Duration(time.Now().UnixNano()-sentAt[n].Load()))
			}
			latencies[i] = lat
		}()
	}
	ready.Wait()

	bodies := make([][]byte, deliveries)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for n := range bodies {
		ts := at.Add(time.Duration(n) * time.Millisecond)
		if n%eventEvery != 0 {
			// A routine scan of a healthy account: no transition.
			bodies[n] = updatedBody(fmt.Sprintf("healthy-%d", n%500), "u", "connected", "", ts)
			continue
		}
		// 200 accounts, each alternating disconnected and recovered.
		k := n / eventEvery
		status, code := "error", "auth_required"
		if (k/200)%2 == 1 {
			status, code = "connected", ""
		}
		bodies[n] = updatedBody(fmt.Sprintf("acct-%d", k%200), "u", status, code, ts)
	}
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	began := time.Now()
	b.ResetTimer()

	// A paced sender: delivery n leaves at began + n/rate, from a pool of
	// workers so that one slow commit does not hold the pace.
	jobs := make(chan int, deliveries)
	var senders sync.WaitGroup
	client := ahv1.NewWebhookServiceClient(conns[0])
	for range 32 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for n := range jobs {
				sig := webhook.Sign(fixtureSecret, bodies[n])
				sentAt[n].Store(time.Now().UnixNano())
				if _, err := client.ReceiveArgyleWebhook(ctx, &ahv1.ReceiveArgyleWebhookRequest{Payload: bodies[n], Signature: sig}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for n := range deliveries {
		time.Sleep(time.Until(began.Add(time.Duration(n) * time.Second / time.Duration(rate))))
		jobs <- n
	}
	close(jobs)
	senders.Wait()
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		b.Fatal("subscribers did not receive every event within 30s of the last delivery")
	}
	b.StopTimer()
	elapsed := time.Since(began)
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond

	var all []time.Duration
	for _, l := range latencies {
		if len(l) != total {
			b.Fatalf("a subscriber got %d of %d events", len(l), total)
		}
		all = append(all, l...)
	}
	slices.Sort(all)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(all[len(all)/2]), "p50-ms")
	b.ReportMetric(ms(all[len(all)*99/100]), "p99-ms")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cpu-s/s")
	b.ReportMetric(float64(deliveries)/elapsed.Seconds(), "deliveries/s")
}
