// Writes a DICOM SR the way OHIF saves measurements: Cornerstone3D annotations turned
// into a TID 1500 report by @cornerstonejs/adapters (MeasurementReport.generateReport) and
// written by dcmjs. Usage: node write_sr.mjs SPEC.json OUT.dcm, where SPEC.json holds
// {"images": {"<imageId>": {"plane": {...}, "instance": {DICOM keywords}}},
//  "annotations": [{"tool": "PlanarFreehandROI", "imageId": ..., "label": ..., "points": [[x,y,z], ...], "closed": true}]}
import fs from "fs";
import dcmjs from "dcmjs";
import { metaData } from "@cornerstonejs/core";
import { adaptersSR } from "@cornerstonejs/adapters";

const [specPath, outPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specPath, "utf8"));
metaData.addProvider((type, imageId) => {
  const image = spec.images[imageId];
  if (!image) return undefined;
  const p = image.plane, inst = image.instance;
  switch (type) {
    case "imagePlaneModule":
      return {
        frameOfReferenceUID: inst.FrameOfReferenceUID,
        rows: p.rows,
        columns: p.columns,
        imagePositionPatient: p.ipp,
        rowCosines: p.iop.slice(0, 3),
        columnCosines: p.iop.slice(3, 6),
        rowPixelSpacing: p.spacing[0],
        columnPixelSpacing: p.spacing[1],
      };
    case "sopCommonModule":
      return { sopInstanceUID: inst.SOPInstanceUID, sopClassUID: inst.SOPClassUID };
    case "instance":
      return inst;
    case "frameNumber":
      return image.frame ?? 1;
    default:
      return undefined;
  }
}, 10000);
const toolState = {};
for (const a of spec.annotations) {
  const tools = (toolState[a.imageId] ??= {});
  const entry = (tools[a.tool] ??= { data: [] });
  entry.data.push({
    metadata: { toolName: a.tool, referencedImageId: a.imageId, FrameOfReferenceUID: spec.images[a.imageId].instance.FrameOfReferenceUID },
    data: {
      label: a.label,
      contour: { polyline: a.points, closed: a.closed },
      handles: { points: [], textBox: { hasMoved: false } },
      cachedStats: { [`imageId:${a.imageId}`]: { area: 100, areaUnit: "mm\u00b2", perimeter: 40 } },
    },
  });
}
const report = adaptersSR.Cornerstone3D.MeasurementReport.generateReport(toolState, metaData, {});
const dict = dcmjs.data.datasetToDict(report.dataset);
fs.writeFileSync(outPath, Buffer.from(dict.write()));
