package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/edgedet/edgedet/agent/control"
)

// startControl queues the retained control values now and again after
// every reconnect (a broker without persistence forgets retained messages
// when it restarts), and subscribes to the /set topics once; the client
// re-subscribes on reconnect. Home Assistant discovery is startDiscovery's.
func (a *Agent) startControl(ctx context.Context, env *runEnv) error {
	client, box, topics := env.client, env.box, env.topics
	byName := map[string]*pipeline{}
	for _, p := range a.pipes {
		byName[p.name] = p
	}
	retainedState := func() {
		now := a.clock.Now()
		for _, p := range a.pipes {
			box.Send(control.StateMessages(topics, p.ctrl, now)...)
		}
	}
	retainedState()
	client.OnConnect(retainedState) // Send signals a flush; Trigger is registered in startServices
	controlStates := func() {
		now := a.clock.Now()
		for _, p := range a.pipes {
			box.Send(control.StateMessages(topics, p.ctrl, now)...)
		}
	}
	a.publishControl.Store(&controlStates)
	err := client.Subscribe(ctx, topics.SetFilter(), 1, a.controlHandler(env, byName))
	if err != nil {
		return fmt.Errorf("subscribe to control topics: %w", err)
	}
	return nil
}

// controlHandler applies a /set message to its camera's control and
// queues the camera's control states.
func (a *Agent) controlHandler(env *runEnv, byName map[string]*pipeline) func(topic string, payload []byte) {
	box, topics := env.box, env.topics
	return func(topic string, payload []byte) {
		cam, setting, ok := control.ParseSet(topics, topic)
		p := byName[cam]
		if !ok || p == nil {
			return
		}
		changed, err := p.ctrl.Set(setting, payload)
		if err != nil {
			a.log.Warn("control message rejected", "topic", topic, "err", err)
			return
		}
		if changed {
			a.log.Info("control", "camera", cam, "setting", setting, "value", strings.TrimSpace(string(payload)))
		}
		box.Send(control.StateMessages(topics, p.ctrl, a.clock.Now())...)
	}
}
