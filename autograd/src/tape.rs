//! The tape: the list of ops run in one forward pass, and the backward walk
//! over it.
//!
//! A [`Tape`] is a growing list of *nodes*. A node is either a **leaf** (a
//! value that did not come from a recorded op: a parameter, or an input
//! whose gradient is wanted) or an **op node**, which remembers which nodes
//! were its inputs and holds its *backward rule*: a closure that, given the
//! gradient arriving at the op's output, returns the gradient for each of
//! its inputs. Ops append their node when they run, so the list is in
//! evaluation order and every node's inputs come before it.
//!
//! [`Tape::backward`] seeds the loss with gradient 1 and visits the nodes
//! from the last to the first. Every node after the loss, or not on a path to
//! it, has no gradient and is skipped. An op node with a gradient calls its
//! rule and *adds* each returned gradient into its input's slot (a value used
//! twice receives the sum of both uses); once a node has passed its gradient
//! on, the gradient and the rule (with everything it saved) are freed. A
//! leaf's gradient is kept for the caller, and a parameter's is added into
//! the [`Param`].
//!
//! Memory: the tape and every [`Var`] on it share one
//! `Rc<RefCell<TapeInner>>`. Nodes hold tensors and parameter handles, never
//! tape handles, so there is no reference cycle: when the `Tape` and its last
//! `Var` are dropped, every node and every tensor it saved is freed.
//! [`live_nodes`] counts the nodes alive on this thread, so a test can show
//! that nothing survives a step.

use crate::no_grad::is_grad_enabled;
use crate::param::Param;
use crate::profile;
use crate::var::Var;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use tensor::Tensor;

/// A backward rule: given the gradient arriving at an op's output and, for
/// each input, whether that input wants a gradient, return one gradient per
/// input (`None` where none was wanted). It runs at most once, so it may
/// move what it saved.
pub(crate) type Backward = Box<dyn FnOnce(&Tensor, &[bool]) -> Vec<Option<Tensor>>>;

thread_local! {
    /// How many tape nodes are alive on this thread.
    static LIVE_NODES: Cell<usize> = const { Cell::new(0) };
}

/// The number of tape nodes alive on this thread: created by a recorded op,
/// [`Tape::param`] or [`Tape::leaf`], and not yet freed with their tape.
///
/// Each node owns everything its op saved for the backward pass (input
/// values, max-pool indices, batch-norm statistics), so this count returning
/// to the same value after each training step shows that no step leaves
/// tensors behind. It is per thread because a tape lives on one thread (and
/// so tests running side by side do not disturb each other's counts).
pub fn live_nodes() -> usize {
    LIVE_NODES.with(|n| n.get())
}

/// Gives each tape a number, so a [`Gradients`] can tell its own vars.
static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(0);

/// What kind of node this is.
enum NodeKind {
    /// A value from outside: a parameter (its gradient goes into the
    /// `Param`) or a plain input.
    Leaf(Option<Param>),
    /// The output of a recorded op: the op's input nodes (`None` for an input
    /// that is a constant) and its backward rule, taken when it runs.
    Op {
        inputs: Vec<Option<usize>>,
        backward: Option<Backward>,
    },
}

/// One entry of the tape.
struct Node {
    /// The op's name, for messages.
    op: &'static str,
    /// The shape of the node's value (its gradient must have it too).
    shape: Vec<usize>,
    kind: NodeKind,
}

impl Node {
    fn new(op: &'static str, shape: &[usize], kind: NodeKind) -> Node {
        LIVE_NODES.with(|n| n.set(n.get() + 1));
        Node {
            op,
            shape: shape.to_vec(),
            kind,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        LIVE_NODES.with(|n| n.set(n.get() - 1));
    }
}

/// The storage behind a [`Tape`] handle.
pub(crate) struct TapeInner {
    id: u64,
    nodes: Vec<Node>,
    walked: bool,
}

/// A Wengert list of the ops of one forward pass. Make a fresh one per
/// step; see the [module docs](self) for how it works.
///
/// `Tape` is a cheap handle (an `Rc`); every [`Var`] recorded on it holds one
/// too, so the nodes are freed when the tape and all its vars are gone.
#[derive(Clone)]
pub struct Tape {
    inner: Rc<RefCell<TapeInner>>,
}

impl Default for Tape {
    fn default() -> Tape {
        Tape::new()
    }
}

impl Tape {
    /// An empty tape.
    pub fn new() -> Tape {
        profile::tape_started();
        Tape {
            inner: Rc::new(RefCell::new(TapeInner {
                id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
                nodes: Vec::new(),
                walked: false,
            })),
        }
    }

    /// The number of nodes recorded so far (leaves and ops).
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether two handles refer to the same tape.
    pub fn same_as(&self, other: &Tape) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    fn push(&self, node: Node) -> usize {
        profile::recorded(node.op);
        let mut inner = self.inner.borrow_mut();
        inner.nodes.push(node);
        inner.nodes.len() - 1
    }

    /// Puts a parameter's current value on the tape as a leaf: after
    /// [`Tape::backward`] its gradient is added into the parameter. Inside
    /// [`no_grad`](crate::no_grad()) it returns a constant instead and records
    /// nothing.
    pub fn param(&self, p: &Param) -> Var {
        let value = p.value();
        if !is_grad_enabled() {
            return Var::constant(value);
        }
        let index = self.push(Node::new(
            "param",
            value.shape(),
            NodeKind::Leaf(Some(p.clone())),
        ));
        Var::on_tape(value, self.clone(), index)
    }

    /// Puts a tensor on the tape as a leaf whose gradient is wanted (read it
    /// from the [`Gradients`] that [`Tape::backward`] returns). For inputs
    /// that need no gradient use [`Var::constant`]. Inside
    /// [`no_grad`](crate::no_grad()) it returns a constant.
    pub fn leaf(&self, value: Tensor) -> Var {
        if !is_grad_enabled() {
            return Var::constant(value);
        }
        let index = self.push(Node::new("leaf", value.shape(), NodeKind::Leaf(None)));
        Var::on_tape(value, self.clone(), index)
    }

    /// Records an op whose tracked inputs are on this tape. `inputs` has one
    /// entry per op input: its node, or `None` for a constant.
    pub(crate) fn record(
        &self,
        op: &'static str,
        shape: &[usize],
        inputs: Vec<Option<usize>>,
        backward: Backward,
    ) -> usize {
        self.push(Node::new(
            op,
            shape,
            NodeKind::Op {
                inputs,
                backward: Some(backward),
            },
        ))
    }

    /// The tape's number, unique in this process.
    pub(crate) fn id(&self) -> u64 {
        self.inner.borrow().id
    }

    /// Reverse-mode differentiation: the gradient of `loss` (a one-element
    /// var recorded on this tape) with respect to every leaf it depends on.
    ///
    /// Walks the tape backward as the [module docs](self) describe. Each
    /// parameter leaf's gradient is added into its [`Param`]; the returned
    /// [`Gradients`] holds every leaf's gradient. A tape can be walked once:
    /// the backward rules are consumed (and their saved tensors freed) on
    /// the way (ops may still run on the tape's vars afterwards, to compute
    /// metrics, but a second walk panics). Panics if `loss` has more than
    /// one element, is not on this tape, or the tape was walked already.
    pub fn backward(&self, loss: &Var) -> Gradients {
        assert_eq!(
            loss.value().numel(),
            1,
            "Tape::backward: the loss must have one element, it has shape {:?} \
             (reduce it first, e.g. with sum_all or mean_all)",
            loss.shape()
        );
        let start = match loss.node() {
            Some((tape, index)) if tape.same_as(self) => index,
            Some(_) => panic!("Tape::backward: the loss was recorded on another tape"),
            None => panic!(
                "Tape::backward: the loss is a constant (it depends on no parameter or leaf, \
                 or was computed inside no_grad)"
            ),
        };
        let mut inner = self.inner.borrow_mut();
        assert!(
            !inner.walked,
            "Tape::backward: this tape was already walked backward; make a fresh Tape per step"
        );
        inner.walked = true;

        let n = inner.nodes.len();
        let mut grads: Vec<Option<Tensor>> = vec![None; n];
        let mut leaf_grads: Vec<Option<Tensor>> = vec![None; n];
        grads[start] = Some(Tensor::ones(loss.shape(), &loss.device()));

        for i in (0..=start).rev() {
            let Some(g) = grads[i].take() else { continue };
            let node = &mut inner.nodes[i];
            let op = node.op;
            match &mut node.kind {
                NodeKind::Leaf(param) => {
                    if let Some(p) = param {
                        profile::backward("(parameter gradients)", || p.accumulate_grad(&g));
                    }
                    leaf_grads[i] = Some(g);
                }
                NodeKind::Op { inputs, backward } => {
                    let inputs = std::mem::take(inputs);
                    let rule = backward.take().expect("each backward rule runs once");
                    let needs: Vec<bool> = inputs.iter().map(Option::is_some).collect();
                    let input_grads = profile::backward(op, || rule(&g, &needs));
                    assert_eq!(
                        input_grads.len(),
                        inputs.len(),
                        "autograd: the backward of `{op}` returned {} gradients for {} inputs",
                        input_grads.len(),
                        inputs.len()
                    );
                    for (k, (input, gi)) in inputs.iter().zip(input_grads).enumerate() {
                        let (Some(j), Some(gi)) = (input, gi) else {
                            continue;
                        };
                        assert_eq!(
                            gi.shape(),
                            inner.nodes[*j].shape.as_slice(),
                            "autograd: the backward of `{op}` gave input {k} a gradient of the \
                             wrong shape"
                        );
                        grads[*j] = Some(match grads[*j].take() {
                            Some(acc) => profile::backward("(gradient sums)", || acc.add(&gi)),
                            None => gi,
                        });
                    }
                }
            }
        }
        Gradients {
            tape_id: inner.id,
            grads: leaf_grads,
        }
    }
}

impl fmt::Debug for Tape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        let ops: Vec<&str> = inner.nodes.iter().map(|n| n.op).collect();
        write!(f, "Tape(id={}, nodes={ops:?})", inner.id)
    }
}

/// The gradients of the leaves of one backward pass, looked up by their
/// [`Var`].
pub struct Gradients {
    tape_id: u64,
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// The gradient of the loss with respect to `leaf` (a var from
    /// [`Tape::leaf`] or [`Tape::param`] on the tape that ran backward), or
    /// `None` if the loss does not depend on it, or it is not a leaf of that
    /// tape. Gradients of intermediate values are freed during the walk.
    pub fn get(&self, leaf: &Var) -> Option<&Tensor> {
        let (tape, index) = leaf.node()?;
        if tape.id() != self.tape_id {
            return None;
        }
        self.grads.get(index)?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::no_grad;
    use tensor::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_vec(v.to_vec(), &[v.len()], &Device::Cpu)
    }

    #[test]
    fn a_value_used_twice_gets_the_sum() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0, -2.0]));
        let loss = x.mul(&x).add(&x).sum_all(); // d/dx = 2x + 1
        let grads = tape.backward(&loss);
        assert_eq!(grads.get(&x).unwrap().to_vec(), vec![3.0, -3.0]);
    }

    #[test]
    fn a_param_on_the_tape_twice_gets_both_contributions() {
        let p = Param::new("p", t(&[2.0]));
        let tape = Tape::new();
        let (a, b) = (tape.param(&p), tape.param(&p));
        let loss = a.mul(&b).sum_all(); // p², d/dp = 2p
        tape.backward(&loss);
        assert_eq!(p.grad().unwrap().to_vec(), vec![4.0]);
    }

    #[test]
    fn detach_and_constants_stop_gradients() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[3.0]));
        let c = Var::constant(t(&[5.0]));
        let loss = x.mul(&x.detach()).add(&c).sum_all(); // d/dx = detached x
        assert!(!x.detach().is_tracked());
        let grads = tape.backward(&loss);
        assert_eq!(grads.get(&x).unwrap().to_vec(), vec![3.0]);
        assert!(grads.get(&c).is_none());
    }

    #[test]
    fn ops_on_constants_record_nothing() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0]));
        let c = Var::constant(t(&[2.0])).exp().mul_scalar(3.0);
        assert!(!c.is_tracked());
        assert_eq!(tape.len(), 1);
        let y = no_grad(|| x.exp());
        assert!(!y.is_tracked());
        assert_eq!(tape.len(), 1);
    }

    #[test]
    fn nodes_are_freed_with_the_tape() {
        let before = live_nodes();
        {
            let tape = Tape::new();
            let x = tape.leaf(t(&[1.0, 2.0]));
            let loss = x.square().sum_all();
            assert_eq!(live_nodes(), before + 3);
            tape.backward(&loss);
            assert_eq!(live_nodes(), before + 3);
        }
        assert_eq!(live_nodes(), before);
        // A var that outlives its `Tape` handle keeps the nodes alive.
        let kept = {
            let tape = Tape::new();
            tape.leaf(t(&[1.0])).exp()
        };
        assert_eq!(live_nodes(), before + 2);
        drop(kept);
        assert_eq!(live_nodes(), before);
    }

    #[test]
    fn gradients_belong_to_their_tape() {
        let (t1, t2) = (Tape::new(), Tape::new());
        let x1 = t1.leaf(t(&[1.0]));
        let x2 = t2.leaf(t(&[1.0]));
        let grads = t1.backward(&x1.sum_all());
        assert!(grads.get(&x1).is_some());
        assert!(grads.get(&x2).is_none());
    }

    #[test]
    #[should_panic(expected = "the inputs were recorded on different tapes")]
    fn mixing_tapes_panics() {
        let (t1, t2) = (Tape::new(), Tape::new());
        t1.leaf(t(&[1.0])).add(&t2.leaf(t(&[1.0])));
    }

    #[test]
    #[should_panic(expected = "already walked backward")]
    fn a_tape_is_walked_once() {
        let tape = Tape::new();
        let loss = tape.leaf(t(&[1.0])).sum_all();
        tape.backward(&loss);
        tape.backward(&loss);
    }

    #[test]
    fn ops_still_run_after_backward() {
        // Metrics computed from a step's vars after its backward pass.
        let tape = Tape::new();
        let x = tape.leaf(t(&[0.0]));
        tape.backward(&x.sum_all());
        assert_eq!(x.exp().item(), 1.0);
    }

    #[test]
    #[should_panic(expected = "the loss must have one element")]
    fn the_loss_is_a_scalar() {
        let tape = Tape::new();
        let x = tape.leaf(t(&[1.0, 2.0]));
        tape.backward(&x);
    }

    #[test]
    #[should_panic(expected = "the loss is a constant")]
    fn a_constant_loss_panics() {
        let tape = Tape::new();
        tape.backward(&Var::constant(t(&[1.0])));
    }

    #[test]
    fn only_inputs_that_want_a_gradient_get_one() {
        // conv2d with a constant input (the first layer of a network): the
        // weight's gradient is computed, the input's is not asked for.
        let d = Device::Cpu;
        let x = Tensor::randn(&[1, 2, 4, 4], 0.0, 1.0, 1, &d);
        let w = Tensor::randn(&[3, 2, 3, 3], 0.0, 1.0, 2, &d);
        let p = tensor::Conv2dParams::new(1, 1);
        let with_x = {
            let tape = Tape::new();
            let (xv, wv) = (tape.leaf(x.clone()), tape.leaf(w.clone()));
            let grads = tape.backward(&xv.conv2d(&wv, p).square().sum_all());
            grads.get(&wv).unwrap().to_vec()
        };
        let tape = Tape::new();
        let wv = tape.leaf(w);
        let grads = tape.backward(&Var::constant(x).conv2d(&wv, p).square().sum_all());
        assert_eq!(grads.get(&wv).unwrap().to_vec(), with_x);
    }
}
