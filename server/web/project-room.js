// The open project. The route names it (#/p/<id>/…); this enters its room (project:join)
// once someone is signed in, leaves it when the route moves elsewhere, and keeps what the
// shell and the Members view show of it current: the project with its members, the caller's
// role, who is online (project:updated | deleted | presence).
//
// Bus events:
//   'project' (app.setProject)  {id, name, role} | null: only when the open project or the
//                               caller's role in it changes — panels load their data on it
//   'room'                      {state: 'closed' | 'opening' | 'open' | 'failed', id,
//                                project, role, online, error}: after every change
//
// Joins and leaves run one at a time, each against the route as it is when its turn comes, so
// quick navigation never leaves the socket in a project it no longer shows.
import { errorText } from './error-messages.js';

export class ProjectRoom {
  constructor(app) {
    this.app = app;
    this.wanted = null; // the project id the route names
    this.current = null; // {id, role, online, project} while in its room
    this.state = { state: 'closed', id: null };
    this.queue = Promise.resolve();

    app.bus.on('route', (route) => this.want(route.name === 'project' ? route.projectId : null));
    app.bus.on('session', (user) => this.#session(user));
    app.bus.on('resync', (d) => this.#resync(d));
    app.on('project:updated', ({ project }) => this.apply(project));
    app.on('project:deleted', (d) => this.#gone(d.projectId || d.id, d.reason || 'deleted'));
    app.on('project:presence', ({ projectId, users }) => {
      if (!this.current || this.current.id !== projectId) return;
      this.current.online = users || [];
      this.#tell();
    });
  }

  want(id) {
    this.wanted = id;
    this.#schedule();
  }

  /** Try the route's project again (after a failed join). */
  retry() {
    if (this.state.state === 'failed') this.state = { state: 'closed', id: null };
    this.#schedule();
  }

  /** A project view from an ack or a push: the open one's details (and maybe our role). */
  apply(project) {
    const cur = this.current;
    if (!cur || !project || project.id !== cur.id) return;
    const role = this.#roleIn(project);
    if (!role) {
      this.#gone(project.id, 'removed');
      return;
    }
    cur.project = project;
    if (role !== cur.role) {
      cur.role = role;
      this.app.setProject(this.#summary());
    }
    this.#tell();
  }

  /** The open project was deleted or we left it / were removed: back home. */
  #gone(id, reason) {
    if (!this.current || this.current.id !== id) return;
    this.current = null;
    this.app.setProject(null);
    this.state = { state: 'closed', id: null, reason };
    this.app.bus.emit('room', this.state);
    if (this.wanted === id) this.app.router.replace({ name: 'home' });
  }

  #roleIn(project) {
    const me = this.app.state.user;
    const mine = me && (project.members || []).find((m) => m.userId === me.id);
    return mine ? mine.role : null;
  }

  #summary() {
    const { id, role, project } = this.current;
    return { id, name: project.name, role };
  }

  #tell() {
    const cur = this.current;
    this.state = cur ? { state: 'open', id: cur.id, project: cur.project, role: cur.role,
      online: cur.online } : { state: 'closed', id: null };
    this.app.bus.emit('room', this.state);
  }

  #schedule() {
    this.queue = this.queue.then(() => this.#sync()).catch((err) => console.error(err));
  }

  async #sync() {
    const target = this.app.state.user ? this.wanted : null;
    if (this.current && this.current.id === target) return;
    if (this.state.state === 'failed' && this.state.id === target) return; // asked already
    if (this.current) await this.#leave();
    if (target) await this.#join(target);
    else if (this.state.state !== 'closed') this.#tell();
  }

  async #join(id) {
    this.state = { state: 'opening', id };
    this.app.bus.emit('room', this.state);
    let data;
    try {
      data = await this.app.call('project:join', { id });
    } catch (err) {
      this.state = { state: 'failed', id, error: err };
      this.app.setProject(null);
      this.app.bus.emit('room', this.state);
      return;
    }
    this.current = { id, role: data.role, online: data.online || [], project: data.project };
    this.app.setProject(this.#summary());
    this.#tell();
    if (this.wanted !== id) this.#schedule(); // the route moved on while we were joining
  }

  async #leave() {
    const { id } = this.current;
    this.current = null;
    this.app.setProject(null);
    try {
      await this.app.call('project:leave', { id });
    } catch (err) {
      if (err.code !== 'bad_request' && err.code !== 'disconnected') throw err;
    }
  }

  #session(user) {
    const before = this.me;
    this.me = user;
    const cur = this.current;
    this.current = null;
    this.state = { state: 'closed', id: null };
    if (!user) {
      this.app.bus.emit('room', this.state);
      return;
    }
    // Another user: their rooms were not ours. The same user again (a guest who registered):
    // enter the room again, on the session it now has.
    if (cur && !(before && before.id === user.id)) this.app.setProject(null);
    this.#schedule();
  }

  // After a reconnect the client re-joined the room and replayed what it missed; only what
  // could not be replayed is read again, or the room entered again.
  async #resync({ room, error }) {
    const cur = this.current;
    if (!cur || room !== `project:${cur.id}`) return;
    if (error && (error.code === 'forbidden' || error.code === 'not_found')) {
      this.#gone(cur.id, 'removed');
      return;
    }
    try {
      if (error) {
        this.current = null;
        await this.#join(cur.id);
      } else {
        this.apply(await this.app.call('project:get', { id: cur.id }));
      }
    } catch (err) {
      this.app.notify(`Could not reload the project: ${errorText(err)}`, 'error');
    }
  }
}
