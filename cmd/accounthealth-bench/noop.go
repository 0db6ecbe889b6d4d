package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	ahv1 "github.com/accounthealth/accounthealth/gen/accounthealth/v1"
)

// noopEnv set in the environment makes the tool's executable the no-op
// server instead: the baselines run in a process of their own, as the
// service does, so that both are measured the same way.
const noopEnv = "ACCOUNTHEALTH_BENCH_NOOP"

// noopAccounts answers GetAccountHealth with an empty response.
type noopAccounts struct {
	ahv1.UnimplementedAccountHealthServiceServer
}

func (noopAccounts) GetAccountHealth(context.Context, *ahv1.GetAccountHealthRequest) (*ahv1.GetAccountHealthResponse, error) {
	return &ahv1.GetAccountHealthResponse{}, nil
}

// noopWebhooks accepts every delivery without looking at it.
type noopWebhooks struct {
	ahv1.UnimplementedWebhookServiceServer
}

func (noopWebhooks) ReceiveArgyleWebhook(context.Context, *ahv1.ReceiveArgyleWebhookRequest) (*ahv1.ReceiveArgyleWebhookResponse, error) {
	return &ahv1.ReceiveArgyleWebhookResponse{}, nil
}

// rawPayload decodes a request body into the payload's bytes as they came,
// as the service's webhook route does.
type rawPayload struct{ runtime.JSONPb }

func (*rawPayload) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		dst, ok := v.(*[]byte)
		if !ok {
			return fmt.Errorf("the no-op webhook route decodes only the payload, not %T", v)
		}
		var err error
		*dst, err = io.ReadAll(r)
		return err
	})
}

// runNoop serves the baselines: the no-op unary handler on a gRPC listener,
// and the no-op webhook shaped as the service's route (HTTP -> gateway ->
// gRPC in process). It prints "GRPC_ADDR HTTP_ADDR" and serves until its
// stdin closes, which happens when the tool exits.
func runNoop() error {
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	public := grpc.NewServer()
	ahv1.RegisterAccountHealthServiceServer(public, noopAccounts{})
	go public.Serve(grpcLis)

	inproc := grpc.NewServer()
	ahv1.RegisterWebhookServiceServer(inproc, noopWebhooks{})
	inprocLis := bufconn.Listen(1 << 20)
	go inproc.Serve(inprocLis)
	conn, err := grpc.NewClient("passthrough:///inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return inprocLis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &rawPayload{}))
	if err := ahv1.RegisterWebhookServiceHandler(context.Background(), mux, conn); err != nil {
		return err
	}
	go (&http.Server{Handler: mux, ReadHeaderTimeout: readTimeout, ReadTimeout: readTimeout}).Serve(httpLis)

	fmt.Printf("%s %s\n", grpcLis.Addr(), httpLis.Addr())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return nil
}
