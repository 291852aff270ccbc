// Package notify is the notify processor: Alertmanager's dispatch inside the engine, for
// pipelines that run no Alertmanager. Alert transitions go into aggregation groups by a
// routing tree (matchers, continue, group_by), each group notifies its receiver after
// group_wait, then every group_interval when something changed, and again after
// repeat_interval; silences and inhibition rules mute alerts. The dispatcher is a function
// of (state, input, now) over plain data (Dispatcher.Step), so its state, the notification
// log included, is checkpointed like a window's and tests step the clock.
package notify
