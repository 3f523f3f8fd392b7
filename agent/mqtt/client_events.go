package mqtt

import (
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// onConnect runs (in its own goroutine, started by paho) after every
// successful connection.
func (c *Client) onConnect(pc paho.Client) {
	c.waitStoreSettled()
	c.availMu.Lock()
	if c.closed {
		c.availMu.Unlock()
		return
	}
	c.connects.Add(1) // before "online" goes out, for observers of both
	tok := pc.Publish(c.avail, 1, true, []byte(AvailabilityOnline))
	c.wg.Add(1)
	c.availMu.Unlock()
	go func() {
		defer c.wg.Done()
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				c.log.Warn("publish availability failed", "topic", c.avail, "err", c.scrub(err))
			}
		case <-time.After(c.cfg.PublishTimeout.D()):
			c.log.Warn("publish availability timed out", "topic", c.avail, "timeout", c.cfg.PublishTimeout.D())
		case <-c.closing:
		}
		c.afterOnline(pc)
	}()

	c.stateMu.Lock()
	if !c.upClosed {
		close(c.up)
		c.upClosed = true
	}
	first := !c.everUp
	c.everUp = true
	c.warnedRetry = false
	c.lastFailure = failNone
	c.reconnLogged = false
	lostAt := c.lostAt
	c.stateMu.Unlock()
	if first {
		c.log.Info("connected")
	} else {
		c.log.Info("reconnected", "outage", time.Since(lostAt).Round(time.Millisecond))
	}
}

func (c *Client) onLost(_ paho.Client, err error) {
	c.disconnects.Add(1)
	c.stateMu.Lock()
	if c.upClosed {
		c.up = make(chan struct{})
		c.upClosed = false
	}
	c.lostAt = time.Now()
	c.stateMu.Unlock()
	if c.closedFlg.Load() {
		return
	}
	c.log.Warn("connection lost, reconnecting", "err", c.scrub(err))
}

func (c *Client) onReconnecting(paho.Client, *paho.ClientOptions) {
	c.storeSettled.Store(false)
	c.stateMu.Lock()
	first := !c.reconnLogged
	c.reconnLogged = true
	c.stateMu.Unlock()
	if first && !c.closedFlg.Load() {
		c.log.Debug("reconnecting")
	}
}

// waitStoreSettled waits (in paho's OnConnect goroutine) until paho has
// dealt with its store for this connection, so that "online" and the
// OnConnect callbacks' publishes are not sent twice. paho does so right
// after marking the connection open; should it ever not within
// PublishTimeout, publishing goes ahead (a duplicate is possible, a stall
// is not).
func (c *Client) waitStoreSettled() {
	deadline := time.Now().Add(c.cfg.PublishTimeout.D())
	for !c.storeSettled.Load() && !c.closedFlg.Load() {
		if time.Now().After(deadline) {
			c.log.Warn("mqtt client did not settle its in-flight store after connecting; publishing anyway (a message may be sent twice)")
			c.storeSettled.Store(true)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// onNotification reports why connecting failed, saying what the broker or
// the network said (see classifyConnect): the first failure of the
// initial connect loop, and then each change of reason. While reconnecting
// after a loss (already logged by onLost), only a refusal by the broker or
// a certificate problem is reported: those need the operator, the network
// usually does not.
func (c *Client) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	f, ok := n.(paho.ConnectionNotificationFailed)
	if !ok {
		return
	}
	kind := classifyConnect(f.Reason)
	c.stateMu.Lock()
	initial := !c.everUp
	warn := kind != c.lastFailure && (initial || kind.needsOperator())
	if !c.everUp && c.warnedRetry && !kind.needsOperator() && !c.lastFailure.needsOperator() {
		warn = false // one "unreachable"-type warning per initial outage
	}
	if warn {
		c.lastFailure = kind
		c.warnedRetry = true
	}
	c.stateMu.Unlock()
	if !warn || c.closedFlg.Load() {
		return
	}
	if initial {
		c.log.Warn(kind.message()+", retrying", "reason", kind.String(), "err", c.scrub(f.Reason),
			"retry_interval", connectRetryInterval)
	} else {
		c.log.Warn(kind.message()+", retrying", "reason", kind.String(), "err", c.scrub(f.Reason),
			"max_retry_interval", maxReconnectInterval)
	}
}
