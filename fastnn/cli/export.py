"""``fastnn export MODEL.npz MODEL.onnx``: a saved model as an ONNX graph."""

from ..files import load
from ..onnx import OPSET, export_onnx
from .args import check_folder


def add_parser(subparsers):
    p = subparsers.add_parser(
        "export",
        help="write a saved model as an ONNX graph, for ONNX Runtime",
        description=f"Write the model saved in MODEL as an ONNX graph (opset {OPSET}) to OUTPUT: "
        "input x (batch, features), output y, as model.predict gives (the logits of a "
        "classifier), or its softmax with --proba. Needs the onnx package "
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
    model = load(args.model)
    path = export_onnx(model, args.output, output="proba" if args.proba else "predict")
    y = "predict_proba(x)" if args.proba else "predict(x)"
    print(f"wrote {path}: ONNX opset {OPSET}, y = {y} of {type(model).__name__}, {model.dtype}")
    return 0
