"""``fastnn export MODEL.npz MODEL.onnx``: a saved model as an ONNX graph."""

from ..files import load_tabular
from ..onnx import OPSET, export_onnx
from .args import UsageError, check_folder


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="write a saved model as an ONNX graph, for ONNX Runtime",
        description=f"Write the model saved in MODEL as an ONNX graph (opset {OPSET}) to OUTPUT: "
        "input x (batch, features), output y, as model.predict gives (the logits of a "
        "classifier), or its softmax with --proba; for a model trained on a CSV table, "
        "the saved standardizer and target scale are in the graph, as fastnn predict applies "
        "them. Needs the onnx package "
        "(pip install 'fastnn[onnx]').",
    )
    p.add_argument("model", help="a file written by fastnn train or fastnn.save")
    p.add_argument("output", help="the ONNX file to write, e.g. model.onnx")
    p.add_argument(
        "--proba",
        action="store_true",
        help="output the softmax of each row (predict_proba) instead of predict's outputs",
    )
    p.set_defaults(run=export_cmd)


def export_cmd(args):
    check_folder(args.output, "output")
    model, tabular = load_tabular(args.model)
    if args.proba and tabular is not None and tabular.task == "regression":
        raise UsageError(f"--proba: {args.model} is a regression model (no probabilities)")
    path = export_onnx(
        model, args.output, output="proba" if args.proba else "predict", tabular=tabular
    )
    y = "predict_proba(x)" if args.proba else "predict(x)"
    print(f"wrote {path}: ONNX opset {OPSET}, y = {y} of {type(model).__name__}, {model.dtype}")
    return 0
