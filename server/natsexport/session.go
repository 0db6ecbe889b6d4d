package natsexport

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/accounthealth/accounthealth/server/outbound"
	"github.com/accounthealth/accounthealth/server/store"
	"github.com/accounthealth/accounthealth/server/stream"
)

// errConflict: another writer appended to the stream since the export
// last read its end (another replica, most likely).
var errConflict = errors.New("natsexport: the stream changed since the export read its end")

// TruncatedHeader marks a message whose error_message was cut to fit the
// broker's max_payload; its value names the field cut.
const TruncatedHeader = "Accounthealth-Truncated"

// headerRoom is what a message's headers take at most besides the body
// (message id, expected stream and sequence, content type, truncation).
const headerRoom = 1024

// position is where the export stands in the stream.
type position struct {
	streamSeq uint64 // the stream's last sequence: what the next publish expects
	changeSeq int64  // the change its last message carries, 0 if none
}

// session reads where the stream ends and exports the log after it until
// something fails. It says whether it appended anything before failing.
func (e *Exporter) session(ctx context.Context, js jetstream.JetStream) (progressed bool, err error) {
	pos, err := e.locate(ctx, js)
	if err != nil {
		return false, err
	}
	sub, err := e.broker.Subscribe(ctx, stream.Request{Filter: stream.Filter{IncludeRecoveries: true}, Start: stream.StartAfter(pos.changeSeq)})
	if errors.Is(err, stream.ErrInvalidCursor) {
		return false, fmt.Errorf("natsexport: stream %s ends with change %d, beyond this store's change log: it holds another database's export; use another --nats-stream or delete that stream: %w",
			e.opts.Stream, pos.changeSeq, err)
	}
	if err != nil {
		return false, err
	}
	e.resume(pos.changeSeq)
	// The subscription says how far behind the export is with each change
	// it returns, and with a heartbeat when there is none; till then the
	// log says.
	last, err := e.log.LastChangeSeq(ctx)
	if err != nil {
		return false, err
	}
	e.progress(0, pos.changeSeq, max(last-pos.changeSeq, 0))
	for {
		batch, behind, err := e.collect(ctx, sub, js.Conn().MaxPayload())
		if err != nil {
			return progressed, err
		}
		was := pos
		var appended int
		pos, appended, err = e.publish(js, batch, pos)
		progressed = progressed || pos != was
		e.progress(appended, pos.changeSeq, behind+int64(len(after(batch, pos.changeSeq))))
		if err != nil {
			return progressed, err
		}
	}
}

// locate reads where the export stands in the stream, creating the stream
// if it is missing: the stream's last message, whose stream sequence and
// change come in one read, so the two always agree. An empty stream (new,
// purged, or aged out) stands at the last sequence its lookup reported:
// had anything been appended since, the last message would have been found.
func (e *Exporter) locate(ctx context.Context, js jetstream.JetStream) (position, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.AckTimeout)
	defer cancel()
	st, err := e.stream(ctx, js)
	if err != nil {
		return position{}, err
	}
	// ">" reads the stream's last message directly, whatever its subject.
	last, err := st.GetLastMsgForSubject(ctx, ">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		n := st.CachedInfo().State.LastSeq
		if n > 0 {
			// Purged, or every message aged out: nothing says where the
			// export stood, so it starts over and the stream gets every
			// transition (see docs/jetstream.md).
			e.opts.Logger.Warn("the JetStream stream holds no exported transition; exporting the whole change log to it", "stream", e.opts.Stream, "stream_last_seq", n)
		}
		return position{streamSeq: n}, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("natsexport: read the last message of stream %s: %w", e.opts.Stream, err)
	}
	seq, err := outbound.SeqOf(last.Header.Get(nats.MsgIdHdr))
	if err != nil {
		return position{}, fmt.Errorf("natsexport: the last message of stream %s (sequence %d, subject %s) was not published by the export, so it cannot say where the export stands; the export needs a stream of its own: %w",
			e.opts.Stream, last.Sequence, last.Subject, err)
	}
	return position{streamSeq: last.Sequence, changeSeq: seq}, nil
}

// stream returns the export's stream, creating it when absent.
func (e *Exporter) stream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, e.opts.Stream)
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		if err != nil {
			return nil, fmt.Errorf("natsexport: look up stream %s: %w", e.opts.Stream, err)
		}
		return st, nil
	}
	st, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        e.opts.Stream,
		Description: "accounthealth: every account health transition, in commit order",
		Subjects:    []string{e.opts.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Duplicates:  e.opts.Duplicates,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, e.opts.Stream) // another replica created it first
	}
	if err != nil {
		return nil, fmt.Errorf("natsexport: create stream %s: %w", e.opts.Stream, err)
	}
	e.opts.Logger.Info("created the JetStream stream", "stream", e.opts.Stream, "subjects", e.opts.SubjectPrefix+".>", "duplicates", e.opts.Duplicates)
	return st, nil
}

// collect waits for the next change and takes the ones already behind it,
// up to a batch. It returns the messages and how many changes the log held
// past the last one; a heartbeat yields an empty batch.
func (e *Exporter) collect(ctx context.Context, sub *stream.Subscription, maxPayload int64) ([]message, int64, error) {
	var batch []message
	bytes := 0
	for {
		item, err := sub.Next(ctx)
		if err != nil {
			return nil, 0, err
		}
		if item.Change != nil {
			m, err := e.encode(*item.Change, maxPayload)
			if err != nil {
				return nil, 0, err
			}
			if m.ID != "" {
				batch = append(batch, m)
				bytes += len(m.Body)
			}
		}
		if item.Behind == 0 || len(batch) >= maxBatch || bytes >= maxBatchBytes {
			return batch, item.Behind, nil
		}
	}
}

// encode returns the message for c, its error message cut when the whole
// would pass the broker's max_payload (limit; 0: unknown), so that one
// large change cannot stall the export. A change that has no message type
// (a correction to a state no one acts on, e.g. CONNECTING) yields the
// zero message: there is nothing to announce.
func (e *Exporter) encode(c store.Change, limit int64) (message, error) {
	var m message
	var err error
	if m.Message, err = outbound.New(c); err != nil {
		e.opts.Logger.Debug("change not exported: it has no message type", "seq", c.Seq, "error", err)
		return message{}, nil
	}
	for limit > 0 && int64(len(m.Body))+headerRoom > limit {
		if c.ErrorMessage == "" {
			return message{}, fmt.Errorf("natsexport: change %d takes %d bytes even without its error message, over the broker's max_payload of %d; raise max_payload", c.Seq, len(m.Body), limit)
		}
		// JSON escaping may grow the text, so cut by the excess, at
		// least by half, until it fits.
		over := int(int64(len(m.Body)) + headerRoom - limit)
		c.ErrorMessage = c.ErrorMessage[:max(0, min(len(c.ErrorMessage)-over, len(c.ErrorMessage)/2))]
		if m.Message, err = outbound.New(c); err != nil {
			return message{}, err
		}
		m.truncated = true
	}
	return m, nil
}

// publish appends batch after pos and returns the stream's position after
// the last message it took, and how many of them it appended. The stream
// takes a message it appends, and one it recognises as a duplicate (it
// remembers ids within its window, e.g. after a purge) right after the
// messages it took.
func (e *Exporter) publish(js jetstream.JetStream, batch []message, pos position) (position, int, error) {
	appended := 0
	for {
		out := e.pipeline(js, batch, pos)
		appended += out.appended
		pos = out.pos
		rest := after(batch, pos.changeSeq)
		switch {
		case len(rest) == 0:
			return pos, appended, nil
		case !out.dup:
			return pos, appended, out.err
		}
		// A duplicate leaves the stream's sequence where it was, so what
		// followed it expected one too many: send that again.
		batch = rest
	}
}

// after returns the messages of batch past the change seq.
func after(batch []message, seq int64) []message {
	for i, m := range batch {
		if m.Seq > seq {
			return batch[i:]
		}
	}
	return nil
}

// outcome is what one pipeline did.
type outcome struct {
	pos      position // after the last message the stream took
	appended int
	dup      bool  // the stream took a duplicate
	err      error // why a message was not taken
}

// pipeline publishes batch after pos, all in flight at once, and waits for
// every acknowledgement (each within AckTimeout). Each publish expects the
// stream's last sequence to be the one the message before it would take,
// so the stream appends a message only right after the change before it,
// whoever appended that: an acknowledged append is a true position. (The
// stream-wide check costs the server nothing; one on a wildcard subject
// would scan the stream's subjects, one per account, at every publish.)
func (e *Exporter) pipeline(js jetstream.JetStream, batch []message, pos position) outcome {
	out := outcome{pos: pos}
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	for i, m := range batch {
		f, err := js.PublishMsgAsync(e.natsMsg(m),
			jetstream.WithMsgID(m.ID),
			jetstream.WithExpectStream(e.opts.Stream),
			jetstream.WithExpectLastSequence(pos.streamSeq+uint64(i)))
		if err != nil {
			out.err = fmt.Errorf("natsexport: publish change %d: %w", m.Seq, err)
			break
		}
		futures = append(futures, f)
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			switch {
			case !ack.Duplicate:
				out.pos = position{streamSeq: ack.Sequence, changeSeq: batch[i].Seq}
				out.appended++
			case i == 0 || out.pos.changeSeq == batch[i-1].Seq:
				out.pos.changeSeq, out.dup = batch[i].Seq, true
			case out.err == nil:
				out.err = errConflict
			}
		case err := <-f.Err():
			if out.err == nil {
				out.err = ackError(batch[i], err)
			}
		}
	}
	return out
}

// ackError explains a refused or unanswered publish.
func ackError(m message, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return errConflict
	}
	return fmt.Errorf("natsexport: change %d not acknowledged: %w", m.Seq, err)
}

// message is one change to publish.
type message struct {
	outbound.Message
	truncated bool // its error message was cut to fit max_payload
}

// natsMsg is m as NATS carries it.
func (e *Exporter) natsMsg(m message) *nats.Msg {
	msg := nats.NewMsg(Subject(e.opts.SubjectPrefix, m.Message))
	msg.Data = m.Body
	msg.Header.Set("Content-Type", "application/json")
	if m.truncated {
		msg.Header.Set(TruncatedHeader, "error_message")
	}
	return msg
}
