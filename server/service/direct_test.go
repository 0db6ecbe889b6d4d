package service

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
)

// chained runs the interceptors as a gRPC server chains them: the first
// outermost, each seeing what the one before passed on, with the call's
// info.
func TestChained(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/test.Service/Method"}
	var order []string
	mark := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, got *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if got != info {
				t.Errorf("%s got info %v", name, got)
			}
			order = append(order, name+">")
			resp, err := handler(ctx, req.(string)+name)
			order = append(order, "<"+name)
			return resp, err
		}
	}
	call := chained([]grpc.UnaryServerInterceptor{mark("a"), mark("b"), mark("c")}, info, func(_ context.Context, req any) (any, error) {
		order = append(order, "handler("+req.(string)+")")
		return req, nil
	})
	for range 2 { // built once, called for every delivery
		order = nil
		resp, err := call(context.Background(), "")
		if got := strings.Join(order, " "); got != "a> b> c> handler(abc) <c <b <a" || resp != "abc" || err != nil {
			t.Fatalf("order %s, response %v, error %v", got, resp, err)
		}
	}
}
