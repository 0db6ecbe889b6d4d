package service

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

// chainUnary runs the interceptors as a gRPC server chains them: the first
// outermost, each seeing what the one before passed on.
func TestChainUnary(t *testing.T) {
	var order []string
	mark := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			order = append(order, name+">")
			resp, err := handler(ctx, req.(string)+name)
			order = append(order, "<"+name)
			return resp, err
		}
	}
	chain := chainUnary([]grpc.UnaryServerInterceptor{mark("a"), mark("b"), mark("c")})
	for range 2 { // the chain is built once and called many times
		order = nil
		resp, err := chain(context.Background(), "", &grpc.UnaryServerInfo{}, func(_ context.Context, req any) (any, error) {
			order = append(order, "handler("+req.(string)+")")
			return req, nil
		})
		if got := strings.Join(order, " "); got != "a> b> c> handler(abc) <c <b <a" || resp != "abc" || err != nil {
			t.Fatalf("order %s, response %v, error %v", got, resp, err)
		}
	}
}
