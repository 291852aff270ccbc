package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/eventops/eventops-engine/config"
)

// securityOpts are the client options broker.tls and broker.sasl ask for, read once at start
// (a token file is read again at every authentication).
func securityOpts(cfg config.Broker) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if cfg.TLS != nil {
		tc, err := clientTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if cfg.SASL != nil {
		mech, err := saslMechanism(cfg.SASL)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

func clientTLS(t *config.BrokerTLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("broker.tls.ca: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.tls.ca: %s holds no PEM certificate", t.CA)
		}
	}
	if t.Cert != "" {
		pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("broker.tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

func saslMechanism(s *config.BrokerSASL) (sasl.Mechanism, error) {
	if s.Mechanism == "OAUTHBEARER" {
		file := s.TokenFile
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			token, err := firstLine(file)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("broker.sasl.token_file: %w", err)
			}
			return oauth.Auth{Token: token}, nil
		}), nil
	}
	pass, err := saslPassword(s)
	if err != nil {
		return nil, err
	}
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("broker.sasl.mechanism: unknown mechanism %q", s.Mechanism)
}

func saslPassword(s *config.BrokerSASL) (string, error) {
	if s.PasswordFile == "" {
		return s.Password, nil
	}
	pass, err := firstLine(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("broker.sasl.password_file: %w", err)
	}
	return pass, nil
}

// firstLine is a secret file's first line, without its newline.
func firstLine(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("%s: %w", file, errors.Join(errors.New("its first line is empty"), ignoreEOF(err)))
	}
	return line, nil
}

// embeddedSASL makes the embedded broker require broker.sasl's user of every client.
func embeddedSASL(s *config.BrokerSASL) ([]kfake.Opt, error) {
	if s == nil {
		return nil, nil
	}
	if s.Mechanism == "OAUTHBEARER" {
		return nil, errors.New("broker.sasl: the embedded broker takes PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	pass, err := saslPassword(s)
	if err != nil {
		return nil, err
	}
	return []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(s.Mechanism, s.Username, pass)}, nil
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}
