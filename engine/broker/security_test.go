package broker

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/eventops/eventops-engine/config"
	"github.com/eventops/eventops-engine/engine/enginetest"
)

// roundTrip creates topic t through the engine's broker, produces a record with the engine's
// client options and reads it back: what every stream does.
func roundTrip(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.EnsureTopics(ctx, map[string]config.Topic{"secured": {Partitions: 1, Replication: 1}}); err != nil {
		t.Fatalf("creating a topic: %v", err)
	}
	cl, err := kgo.NewClient(append(b.ClientOpts(), kgo.ConsumeTopics("secured"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "secured", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
	fetches := cl.PollFetches(ctx)
	if errs := fetches.Errors(); len(errs) > 0 || fetches.NumRecords() != 1 {
		t.Fatalf("reading back: %v, %d records", errs, fetches.NumRecords())
	}
}

// refused says whether a client with opts cannot produce to the cluster at addrs.
func refused(t *testing.T, addrs []string, opts ...kgo.Opt) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		return true
	}
	defer cl.Close()
	err = cl.Ping(ctx)
	if err != nil && ctx.Err() != nil {
		t.Logf("refused only by the deadline: %v", err)
	}
	return err != nil
}

// With broker.sasl the embedded broker requires that user of every client: the engine's own
// clients work, a client without credentials or with a wrong password does not.
func TestEmbeddedBrokerRequiresSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			dir := t.TempDir()
			passFile := filepath.Join(dir, "password")
			if err := os.WriteFile(passFile, []byte("s3cret-pass\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := config.Broker{Embedded: &config.Embedded{Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "broker")},
				SASL: &config.BrokerSASL{Mechanism: mech, Username: "engine", PasswordFile: passFile}}
			b, err := Start(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			roundTrip(t, b)
			if !refused(t, b.Addrs()) {
				t.Error("a client without credentials was served")
			}
			wrong, _ := saslMechanism(&config.BrokerSASL{Mechanism: mech, Username: "engine", Password: "guess"})
			if !refused(t, b.Addrs(), kgo.SASL(wrong)) {
				t.Error("a client with a wrong password was served")
			}
		})
	}
}

// brokerCA is a CA whose certificate is written to dir (for broker.tls.ca), and a server
// certificate it signed for 127.0.0.1.
func brokerCA(t *testing.T, dir string) (caFile string, server tls.Certificate) {
	t.Helper()
	ca := enginetest.NewCA(t)
	caFile = filepath.Join(dir, "ca.crt")
	enginetest.WriteFile(t, caFile, ca.PEM)
	return caFile, ca.Pair(t, 2, false)
}

// An external cluster that asks for TLS and SASL/SCRAM (a kfake cluster set up as a managed
// Kafka is): with broker.tls and broker.sasl the engine creates topics, produces and reads;
// without TLS, or trusting another CA, it cannot.
func TestExternalBrokerOverTLSAndSCRAM(t *testing.T) {
	dir := t.TempDir()
	caFile, pair := brokerCA(t, dir)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "engine", "s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cfg := config.Broker{Brokers: cluster.ListenAddrs(),
		TLS:  &config.BrokerTLS{CA: caFile},
		SASL: &config.BrokerSASL{Mechanism: "SCRAM-SHA-512", Username: "engine", Password: "s3cret-pass"}}
	b, err := Start(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	roundTrip(t, b)
	mech, _ := saslMechanism(cfg.SASL)
	if !refused(t, cluster.ListenAddrs(), kgo.SASL(mech)) {
		t.Error("a client without TLS was served")
	}
	otherCA, _ := brokerCA(t, t.TempDir())
	tc, err := clientTLS(&config.BrokerTLS{CA: otherCA})
	if err != nil {
		t.Fatal(err)
	}
	if !refused(t, cluster.ListenAddrs(), kgo.SASL(mech), kgo.DialTLSConfig(tc)) {
		t.Error("a client trusting another CA connected")
	}
}

// OAUTHBEARER reads its token file at every authentication, so a refreshed token is used
// without a restart. (No broker here speaks OAUTHBEARER: kfake does not; this checks what the
// engine sends.)
func TestOAuthTokenIsReadAtEveryAuthentication(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	mech, err := saslMechanism(&config.BrokerSASL{Mechanism: "OAUTHBEARER", TokenFile: file})
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"first-token", "refreshed-token"} {
		if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, msg, err := mech.Authenticate(context.Background(), "127.0.0.1:9092")
		if err != nil || !strings.Contains(string(msg), "auth=Bearer "+token) {
			t.Errorf("authentication sends %q (%v), want the token %s", msg, err, token)
		}
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mech.Authenticate(context.Background(), "127.0.0.1:9092"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty token file: %v, want an error saying so", err)
	}
}
